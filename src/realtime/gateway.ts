// The WebSocket gateway at /websocket: the transport and nothing else. It authenticates the
// upgrade (Bearer header, single-use ticket or ?token=) and checks the Origin, decodes each frame
// and dispatches it to its chat/ use case with the connection as the caller, and keeps
// heartbeats. Backpressure and replay state live in the connection (connection.ts).
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { rateLimited, type Accounts, type AuthContext } from '../auth/accounts.js';
import type { Bus } from '../bus/bus.js';
import type { Presence } from '../bus/presence.js';
import type { MessageWriter } from '../chat/message-writer.js';
import type { SendMessage } from '../chat/send.js';
import type { Sync } from '../chat/sync.js';
import type { Receipts } from '../chat/receipts.js';
import type { Typing } from '../chat/typing.js';
import { AppError, CLOSE_ERRORS } from '../errors.js';
import { decodeClientFrame, type ClientFrameOf, type ClientFrameType } from '../protocol/codec.js';
import { MAX_PAYLOAD_BYTES, MESSAGE_ID } from '../protocol/message.js';
import { bearerToken } from '../auth/bearer.js';
import { redactUrl } from '../logger.js';
import { Connection } from './connection.js';
import { Hub, type HubHooks } from './hub.js';
import { TokenBuckets } from '../limits/token-bucket.js';
import type { RateBuckets } from '../limits/limits.js';
import { WriteCoalescer } from './write-coalescer.js';

export interface GatewayOptions {
  server: Server;
  accounts: Accounts;
  bus: Bus;
  /** Who is online on any node; this node's hub reports its own users to it. */
  presence?: Presence;
  /** The use cases that client frames are dispatched to. */
  send: SendMessage;
  sync: Sync;
  receipts: Receipts;
  typing: Typing;
  /** What the hub reports back (deliveries for receipts, presence changes). */
  hubHooks?: HubHooks;
  /** The group-commit writer, flushed on shutdown so that messages read are acked first. */
  writer: MessageWriter;
  logger: FastifyBaseLogger;
  pingIntervalMs: number;
  /** At shutdown, the window over which connections are closed in batches; 0 closes all at once. */
  closeSpreadMs?: number;
  sendQueueBytes: number;
  handshakesPerMinute: number;
  /**
   * Handshakes authenticated at once (default 64); the others wait in arrival order. Without a
   * bound, thousands of reconnects each get a share of every step and all finish together,
   * seconds later, in one long turn of the event loop.
   */
  handshakeConcurrency?: number;
  /** Handshake buckets per address (shared by the nodes with Redis); else this node's own. */
  handshakeBuckets?: RateBuckets;
  /** Frames refused as the client's mistake per account per minute; one more closes it (1008). */
  refusedFramesPerMinute: number;
  /** Refusal buckets per account (shared by the nodes with Redis); else this node's own. */
  refusalBuckets?: RateBuckets;
  /** The client address of an upgrade request (honours TRUST_PROXY like the HTTP routes). */
  clientAddress: (req: IncomingMessage) => string;
  /** Browser origins allowed besides the server's own. */
  allowedOrigins: string[];
  /** The configured public URL, if any: its origin is the server's own. */
  publicUrl: string;
  onConnectionsChanged?: (count: number) => void;
  /** An error frame was sent (metrics). */
  onErrorFrame?: (code: string) => void;
  /** A handshake or frame was refused by a rate limit: `ws_handshakes` or `messages` (metrics). */
  onRateLimited?: (limit: string) => void;
}

/** How a WebSocket authenticated: header, single-use ticket or `?token=`. */
type AuthVia = 'header' | 'ticket' | 'token';

/** The close reasons the server sends: the only reasons logged. */
const CLOSE_REASONS = new Set<string>(CLOSE_ERRORS);

/** A connection's `rate_limited` frames are logged at most once per this interval. */
const RATE_LOG_INTERVAL_MS = 10_000;

/** At most this many batches of closes at shutdown, spread over `closeSpreadMs`. */
export const CLOSE_BATCHES = 10;

export class Gateway {
  readonly hub: Hub;
  private readonly wss: WebSocketServer;
  private readonly handshakes: RateBuckets;
  private readonly refusals: RateBuckets;
  private readonly coalescer = new WriteCoalescer();
  private readonly nodeId = randomBytes(4).toString('hex');
  private nextConnection = 0;
  /** When each connection's last `rate_limited` was logged, and how many went unlogged since. */
  private readonly rateLogs = new WeakMap<Connection, { at: number; unlogged: number }>();
  private accepting = true;
  /** Set by `hurry`: the rest of a spread-out shutdown closes at once. */
  private hurried = false;
  private wakeSpread: (() => void) | undefined;
  /** Handshakes authenticating now, and the ones waiting for a turn (first in, first served). */
  private authenticating = 0;
  private readonly admissions: Array<() => void> = [];
  private admissionHead = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    void this.upgrade(req, socket, head);

  constructor(private readonly o: GatewayOptions) {
    this.hub = new Hub(o.bus, o.presence, o.hubHooks);
    this.handshakes =
      o.handshakeBuckets ?? new TokenBuckets(o.handshakesPerMinute / 60, o.handshakesPerMinute);
    this.refusals =
      o.refusalBuckets ?? new TokenBuckets(o.refusedFramesPerMinute / 60, o.refusedFramesPerMinute);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_PAYLOAD_BYTES,
      clientTracking: false,
    });
    o.server.on('upgrade', this.onUpgrade);
    this.heartbeat = setInterval(() => this.beat(), o.pingIntervalMs);
    this.heartbeat.unref();
  }

  /**
   * Refuses new WebSocket handshakes (503 `unavailable`) from now on; connections already open
   * are served as before. The drain before a shutdown starts here.
   */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Closes the connections still open at once, skipping the rest of a spread-out shutdown. */
  hurry(): void {
    this.hurried = true;
    this.wakeSpread?.();
  }

  /**
   * Stops accepting, lets in-flight writes commit and their acks go out, closes every connection
   * with 1001, then commits whatever was read before the close (its sender retries by clientId).
   * With `closeSpreadMs`, the closes go out in up to CLOSE_BATCHES batches spread over that window
   * (the first at once), so that clients reconnect to the other nodes over time, not together;
   * connections not yet closed are served meanwhile.
   */
  async shutdown(): Promise<void> {
    this.accepting = false;
    clearInterval(this.heartbeat);
    this.o.server.off('upgrade', this.onUpgrade);
    await this.o.writer.flush();
    const open = [...this.hub.all()];
    const spreadMs = this.o.closeSpreadMs ?? 0;
    const batches = spreadMs > 0 ? Math.min(open.length, CLOSE_BATCHES) : 1;
    if (batches > 1)
      this.o.logger.info(
        { connections: open.length, batches, spreadMs },
        'closing websockets in batches',
      );
    for (let i = 0; i < batches && !this.hurried; i++) {
      if (i > 0) await this.pauseSpread(spreadMs / batches);
      const from = Math.floor((i * open.length) / batches);
      const to = Math.floor(((i + 1) * open.length) / batches);
      for (const conn of open.slice(from, to)) conn.end('server_shutdown');
    }
    // Whatever is left: the rest after a hurry, and any handshake that completed meanwhile.
    for (const conn of this.hub.all()) conn.end('server_shutdown');
    await this.o.writer.flush();
    this.hub.stop();
  }

  /** Waits `ms` between two batches of closes, or less if `hurry` is called. */
  private pauseSpread(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSpread = done;
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    // The connection id names the handshake in the log too, refused or not.
    const connectionId = `${this.nodeId}-${(this.nextConnection++).toString(36)}`;
    const address = this.o.clientAddress(req);
    try {
      if (url.pathname !== '/websocket') throw new AppError('not_found');
      if (!this.accepting) throw new AppError('unavailable', 'The server is shutting down');
      if (!this.originAllowed(req)) throw new AppError('forbidden_origin');
      if (!this.handshakes.take(address)) {
        this.o.onRateLimited?.('ws_handshakes');
        throw rateLimited(60 / this.o.handshakesPerMinute, this.o.handshakesPerMinute);
      }
      const problem = handshakeProblem(req);
      if (problem)
        throw new AppError('invalid_request', problem, { 'Sec-WebSocket-Version': '13' });
      const after = url.searchParams.get('after');
      if (after !== null && !MESSAGE_ID.test(after))
        throw new AppError('invalid_request', 'after must be a message id');
      await this.admit();
      try {
        // The client may have given up, or the server begun to stop, while this one waited.
        if (socket.destroyed) return;
        if (!this.accepting) throw new AppError('unavailable', 'The server is shutting down');
        const { auth, via } = await this.authenticate(req, url);
        if (socket.destroyed) return;
        if (!this.accepting) throw new AppError('unavailable', 'The server is shutting down');
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.o.logger.info(
            { connectionId, userId: auth.user.id, sessionId: auth.session.id, via, address },
            'websocket connected',
          );
          this.open(connectionId, ws, auth, after ?? undefined);
        });
      } finally {
        this.release();
      }
    } catch (error) {
      const e = error instanceof AppError ? error : new AppError('internal_error');
      if (!(error instanceof AppError))
        this.o.logger.error({ err: error, url: redactUrl(req.url ?? '') }, 'upgrade failed');
      (e.status === 429 || e.status >= 500 ? this.o.logger.warn : this.o.logger.info).call(
        this.o.logger,
        { connectionId, status: e.status, code: e.code, address, path: url.pathname.slice(0, 100) },
        'websocket handshake refused',
      );
      refuse(socket, e);
    }
  }

  /** Waits for a handshake slot (WS_HANDSHAKE_CONCURRENCY); turns are given in arrival order. */
  private admit(): Promise<void> {
    if (this.authenticating < (this.o.handshakeConcurrency ?? 64)) {
      this.authenticating += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.admissions.push(resolve));
  }

  /** Hands the slot to the next waiting handshake, if any. */
  private release(): void {
    const next = this.admissions[this.admissionHead];
    if (next === undefined) {
      this.authenticating -= 1;
      return;
    }
    this.admissions[this.admissionHead++] = undefined as unknown as () => void;
    if (this.admissionHead > 1024 && this.admissionHead * 2 > this.admissions.length) {
      this.admissions.splice(0, this.admissionHead);
      this.admissionHead = 0;
    }
    next();
  }

  private async authenticate(
    req: IncomingMessage,
    url: URL,
  ): Promise<{ auth: AuthContext; via: AuthVia }> {
    const header = bearerToken(req.headers.authorization);
    if (header) return { auth: await this.o.accounts.authenticate(header), via: 'header' };
    const ticket = url.searchParams.get('ticket');
    if (ticket) return { auth: await this.o.accounts.redeemTicket(ticket), via: 'ticket' };
    const token = url.searchParams.get('token');
    if (token) return { auth: await this.o.accounts.authenticate(token), via: 'token' };
    throw new AppError('unauthorized', 'Authenticate with a Bearer header, ?ticket= or ?token=');
  }

  /** Same-origin (public URL, else the Host header), or in the allow-list; no Origin is fine. */
  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    const normalized = origin.replace(/\/$/, '');
    if (this.o.allowedOrigins.includes(normalized)) return true;
    try {
      const { host } = new URL(normalized);
      if (this.o.publicUrl) return new URL(this.o.publicUrl).origin === new URL(normalized).origin;
      return host === req.headers.host;
    } catch {
      return false;
    }
  }

  /** One handler per client frame type: a frame type without one does not compile. */
  private readonly handlers: {
    [T in ClientFrameType]: (conn: Connection, frame: ClientFrameOf<T>) => void;
  } = {
    message: (conn, frame) => this.o.send.handle(conn, frame),
    sync: (conn, frame) => void this.o.sync.replay(conn, frame.after ?? undefined, frame.clientId),
    ping: (conn) => conn.reply({ type: 'pong' }),
    edit: (conn, frame) => this.o.send.edit(conn, frame),
    delete: (conn, frame) => this.o.send.delete(conn, frame),
    read: (conn, frame) =>
      void this.o.receipts
        .read(conn, frame)
        .catch((err: unknown) => this.failed(conn, err, frame.clientId)),
    typing: (conn, frame) =>
      void this.o.typing
        .handle(conn, frame)
        .catch((err: unknown) => this.failed(conn, err, frame.clientId)),
  };

  /** A use case failed on the server: logged, and answered with `internal_error`. */
  private failed(conn: Connection, err: unknown, clientId: string | undefined): void {
    this.o.logger.error({ err }, 'handling a frame failed');
    conn.reply({
      type: 'error',
      code: 'internal_error',
      message: 'Internal server error',
      clientId,
    });
  }

  /** Counts an error frame; logs a connection's `rate_limited` frames, at most one line a while. */
  private readonly errorFrameSent = (conn: Connection, code: string): void => {
    this.o.onErrorFrame?.(code);
    if (code !== 'rate_limited') return;
    this.o.onRateLimited?.('messages');
    const now = Date.now();
    const last = this.rateLogs.get(conn);
    if (last && now - last.at < RATE_LOG_INTERVAL_MS) {
      last.unlogged += 1;
      return;
    }
    this.o.logger.warn(
      {
        connectionId: conn.connectionId,
        userId: conn.userId,
        code,
        limit: 'messages',
        ...(last ? { unloggedSince: last.unlogged } : {}),
      },
      'websocket frame rate limited',
    );
    this.rateLogs.set(conn, { at: now, unlogged: 0 });
  };

  private open(id: string, ws: WebSocket, auth: AuthContext, after: string | undefined): void {
    const opened = Date.now();
    const conn = new Connection(
      id,
      ws,
      auth.user.id,
      auth.user.username,
      auth.session.id,
      this.o.sendQueueBytes,
      this.coalescer,
      this.errorFrameSent,
      () => this.refusals.take(auth.user.id),
    );
    this.hub.add(conn);
    this.o.onConnectionsChanged?.(this.hub.size);
    ws.on('message', (data, isBinary) => this.onFrame(conn, data, isBinary));
    ws.on('pong', () => (conn.alive = true));
    ws.on('error', () => ws.terminate());
    ws.on('close', (code, reason) => {
      const why = reason.toString();
      this.o.logger.info(
        {
          connectionId: id,
          userId: auth.user.id,
          code,
          // The server's own reasons are catalogue keys; a client's reason is its own text.
          ...(CLOSE_REASONS.has(why) ? { reason: why } : {}),
          seconds: Math.round((Date.now() - opened) / 100) / 10,
        },
        'websocket closed',
      );
      this.hub.remove(conn);
      this.o.onConnectionsChanged?.(this.hub.size);
    });
    if (after !== undefined) void this.o.sync.replay(conn, after);
  }

  private onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    // Frames that arrive after the close (a flood that spent its budget) are not even decoded.
    if (!conn.open) return;
    const decoded = decodeClientFrame(data as Buffer, isBinary);
    if (!decoded.ok) {
      const { code, message, clientId } = decoded;
      return conn.reply({ type: 'error', code, message, clientId });
    }
    const frame = decoded.frame;
    (this.handlers[frame.type] as (conn: Connection, frame: unknown) => void)(conn, frame);
  }

  private beat(): void {
    this.o.send.sweep();
    this.o.typing.sweep();
    this.handshakes.sweep();
    this.refusals.sweep();
    for (const conn of this.hub.all()) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  429: 'Too Many Requests',
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const TOKEN_LIST = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*$/;

/**
 * What the WebSocket library would refuse in an upgrade request, checked first so that the
 * refusal has the documented error shape (the library answers such requests with HTML).
 */
function handshakeProblem(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return 'A WebSocket handshake is a GET request';
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'Upgrade must be websocket';
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key))
    return 'Sec-WebSocket-Key is missing or invalid';
  const version = req.headers['sec-websocket-version'];
  if (version !== '8' && version !== '13') return 'Sec-WebSocket-Version must be 13';
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined && !TOKEN_LIST.test(protocols.trim()))
    return 'Sec-WebSocket-Protocol is invalid';
  return undefined;
}

/** Answers a refused upgrade with a plain HTTP response and closes the socket. */
function refuse(socket: Duplex, error: AppError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(error.toBody());
  const headers = [
    `HTTP/1.1 ${error.status} ${REASONS[error.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'Connection: close',
  ];
  if (error.status === 401) headers.push('WWW-Authenticate: Bearer');
  for (const [name, value] of Object.entries(error.headers)) headers.push(`${name}: ${value}`);
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
