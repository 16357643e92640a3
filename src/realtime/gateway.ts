// The WebSocket gateway at /websocket: authenticates the upgrade (Bearer header, single-use
// ticket or ?token=), checks the Origin, then reads frames, hands messages to the group-commit
// writer, acks after commit, fans out through the bus, replays streams and keeps heartbeats.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { Compile } from 'typebox/compile';
import type { FastifyBaseLogger } from 'fastify';
import { rateLimited, type Accounts, type AuthContext } from '../auth/accounts.js';
import type { Bus } from '../bus/bus.js';
import type { Presence } from '../bus/presence.js';
import type { MessageWriter } from '../chat/message-writer.js';
import { AppError } from '../errors.js';
import { CONTENT_MAX, MAX_PAYLOAD_BYTES, SendFrame, SyncFrame } from '../protocol/frames.js';
import type { Store } from '../storage/store.js';
import { bearerToken } from '../auth/bearer.js';
import { redactUrl } from '../logger.js';
import { Connection } from './connection.js';
import { Hub } from './hub.js';
import { TokenBuckets } from './token-bucket.js';
import { WriteCoalescer } from './write-coalescer.js';

export interface GatewayOptions {
  server: Server;
  accounts: Accounts;
  store: Store;
  bus: Bus;
  /** Who is online on any node; this node's hub reports its own users to it. */
  presence?: Presence;
  writer: MessageWriter;
  logger: FastifyBaseLogger;
  pingIntervalMs: number;
  sendQueueBytes: number;
  syncPageSize: number;
  messagesPerSecond: number;
  messagesBurst: number;
  handshakesPerMinute: number;
  /** The client address of an upgrade request (honours TRUST_PROXY like the HTTP routes). */
  clientAddress: (req: IncomingMessage) => string;
  /** Browser origins allowed besides the server's own. */
  allowedOrigins: string[];
  /** The configured public URL, if any: its origin is the server's own. */
  publicUrl: string;
  onConnectionsChanged?: (count: number) => void;
  onMessageStored?: () => void;
}

const checkSend = Compile(SendFrame);
const checkSync = Compile(SyncFrame);
const MESSAGE_ID = /^[0-9]{1,16}$/;

export class Gateway {
  readonly hub: Hub;
  private readonly wss: WebSocketServer;
  private readonly buckets: TokenBuckets;
  private readonly handshakes: TokenBuckets;
  private readonly coalescer = new WriteCoalescer();
  private readonly nodeId = randomBytes(4).toString('hex');
  private nextConnection = 0;
  private accepting = true;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    void this.upgrade(req, socket, head);

  constructor(private readonly o: GatewayOptions) {
    this.hub = new Hub(o.bus, o.presence);
    this.buckets = new TokenBuckets(o.messagesPerSecond, o.messagesBurst);
    this.handshakes = new TokenBuckets(o.handshakesPerMinute / 60, o.handshakesPerMinute);
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
   * Stops accepting, lets in-flight writes commit and their acks go out, closes every connection
   * with 1001, then commits whatever was read before the close (its sender retries by clientId).
   */
  async shutdown(): Promise<void> {
    this.accepting = false;
    clearInterval(this.heartbeat);
    this.o.server.off('upgrade', this.onUpgrade);
    await this.o.writer.flush();
    for (const conn of this.hub.all()) conn.close('server_shutdown');
    await this.o.writer.flush();
    this.hub.stop();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname !== '/websocket') throw new AppError('not_found');
      if (!this.accepting) throw new AppError('unavailable', 'The server is shutting down');
      if (!this.originAllowed(req)) throw new AppError('forbidden_origin');
      if (!this.handshakes.take(this.o.clientAddress(req))) {
        throw rateLimited(60 / this.o.handshakesPerMinute, this.o.handshakesPerMinute);
      }
      const after = url.searchParams.get('after');
      if (after !== null && !MESSAGE_ID.test(after))
        throw new AppError('invalid_request', 'after must be a message id');
      const auth = await this.authenticate(req, url);
      if (socket.destroyed) return;
      if (!this.accepting) throw new AppError('unavailable', 'The server is shutting down');
      this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, auth, after ?? undefined));
    } catch (error) {
      const e = error instanceof AppError ? error : new AppError('internal_error');
      if (!(error instanceof AppError))
        this.o.logger.error({ err: error, url: redactUrl(req.url ?? '') }, 'upgrade failed');
      refuse(socket, e);
    }
  }

  private async authenticate(req: IncomingMessage, url: URL): Promise<AuthContext> {
    const header = bearerToken(req.headers.authorization);
    if (header) return this.o.accounts.authenticate(header);
    const ticket = url.searchParams.get('ticket');
    if (ticket) return this.o.accounts.redeemTicket(ticket);
    const token = url.searchParams.get('token');
    if (token) return this.o.accounts.authenticate(token);
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

  private open(ws: WebSocket, auth: AuthContext, after: string | undefined): void {
    const id = `${this.nodeId}-${(this.nextConnection++).toString(36)}`;
    const conn = new Connection(
      id,
      ws,
      auth.user.id,
      auth.user.username,
      auth.session.id,
      this.o.sendQueueBytes,
      this.coalescer,
    );
    this.hub.add(conn);
    this.o.onConnectionsChanged?.(this.hub.size);
    ws.on('message', (data, isBinary) => this.onFrame(conn, data, isBinary));
    ws.on('pong', () => (conn.alive = true));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.hub.remove(conn);
      this.o.onConnectionsChanged?.(this.hub.size);
    });
    if (after !== undefined) void this.replay(conn, after);
  }

  private onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary)
      return conn.sendError('invalid_message', 'Binary frames are not accepted; send JSON text');
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return conn.sendError('invalid_json', 'The frame is not valid JSON');
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      return conn.sendError('invalid_message', 'A frame must be a JSON object');
    }
    const f = frame as Record<string, unknown>;
    const clientId = typeof f.clientId === 'string' ? f.clientId : undefined;
    switch (f.type ?? 'message') {
      case 'message':
        return this.onSend(conn, f, clientId);
      case 'sync':
        if (!checkSync.Check(f))
          return conn.sendError(
            'invalid_message',
            'sync takes an optional message id `after`',
            clientId,
          );
        if (conn.replaying)
          return conn.sendError('invalid_message', 'A sync is already running', clientId);
        return void this.replay(conn, f.after ?? undefined);
      case 'ping':
        return conn.send('{"type":"pong"}');
      default:
        return conn.sendError(
          'invalid_message',
          'type must be "message", "sync" or "ping"',
          clientId,
        );
    }
  }

  private onSend(conn: Connection, f: Record<string, unknown>, clientId: string | undefined): void {
    if (!checkSend.Check(f)) {
      const first = checkSend.Errors(f)[0];
      const where = first?.instancePath ? first.instancePath.slice(1) : 'frame';
      return conn.sendError(
        'invalid_message',
        `${where}: ${first?.message ?? 'invalid'}`,
        clientId,
      );
    }
    // UTF-16 length bounds the code point count from above: count only when it could matter.
    if (f.content.length > CONTENT_MAX && [...f.content].length > CONTENT_MAX) {
      return conn.sendError(
        'invalid_message',
        `content must be 1 to ${CONTENT_MAX} characters`,
        clientId,
      );
    }
    if (f.sender !== undefined && f.sender.toLowerCase() !== conn.username.toLowerCase()) {
      return conn.sendError('sender_mismatch', 'sender must be the authenticated user', clientId);
    }
    if (!this.buckets.take(conn.userId)) {
      return conn.sendError('rate_limited', 'Too many messages; slow down and retry', clientId);
    }
    this.o.writer
      .append({ senderId: conn.userId, receiver: f.receiver, content: f.content, clientId })
      .then(
        (result) => {
          switch (result.kind) {
            case 'unknown_receiver':
              return conn.sendError('unknown_receiver', `No user named ${f.receiver}`, clientId);
            case 'duplicate':
              return conn.send(ack(result.message.id, result.message.createdAt, clientId));
            case 'stored': {
              conn.send(ack(result.message.id, result.message.createdAt, clientId));
              this.o.onMessageStored?.();
              const frame = JSON.stringify({ type: 'message', ...result.message });
              void this.o.bus.publish({
                type: 'deliver',
                userIds: result.recipients,
                messageId: result.message.id,
                frame,
                exceptConnectionId: conn.id,
              });
            }
          }
        },
        (error: unknown) => {
          this.o.logger.error({ err: error }, 'storing a message failed');
          conn.sendError(
            'internal_error',
            'The message was not stored; retry with the same clientId',
            clientId,
          );
        },
      );
  }

  /**
   * Replays the stream after `after`, merged with live messages: live ones are held while pages
   * are read from the store, then those not already replayed (id greater than the last replayed
   * id) are sent. Ids grow in commit order, so nothing is missed and nothing is sent twice.
   */
  private async replay(conn: Connection, after: string | undefined): Promise<void> {
    conn.replaying = true;
    let cursor = after;
    try {
      for (;;) {
        const page = await this.o.store.stream(conn.userId, cursor, this.o.syncPageSize);
        for (const m of page.messages) {
          // Replay at the reader's pace: the send queue limit is for live traffic.
          if (conn.ws.bufferedAmount > this.o.sendQueueBytes / 2)
            await drained(conn, this.o.sendQueueBytes / 4);
          if (!conn.open) break;
          conn.send(JSON.stringify({ type: 'message', ...m }));
        }
        cursor = page.messages.at(-1)?.id ?? cursor;
        if (!page.hasMore || !conn.open) break;
      }
    } catch (error) {
      this.o.logger.error({ err: error }, 'replay failed');
      conn.close('sync_failed');
      return;
    } finally {
      const last = cursor === undefined ? 0 : Number(cursor);
      for (const [id, frame] of conn.held) {
        if (id > last) {
          conn.send(frame);
          cursor = String(id);
        }
      }
      conn.held = [];
      conn.replayedUpTo = Math.max(conn.replayedUpTo, cursor === undefined ? 0 : Number(cursor));
      conn.replaying = false;
    }
    conn.send(JSON.stringify({ type: 'synced', lastId: cursor ?? null }));
  }

  private beat(): void {
    this.buckets.sweep();
    this.handshakes.sweep();
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

function ack(id: string, createdAt: string, clientId: string | undefined): string {
  return JSON.stringify(
    clientId === undefined
      ? { type: 'ack', id, createdAt }
      : { type: 'ack', clientId, id, createdAt },
  );
}

/** Waits until the connection's queue is below `bytes` (or it closed). */
async function drained(conn: Connection, bytes: number): Promise<void> {
  while (conn.open && conn.ws.bufferedAmount > bytes) await new Promise((r) => setTimeout(r, 5));
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
