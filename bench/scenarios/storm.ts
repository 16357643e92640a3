// The reconnect storm (`npm run bench:storm`, entry bench/storm.ts): K receivers, one user and
// one session each (seeded straight into the database: K registrations would cost K argon2id
// runs), are connected and have received messages; a share of them goes offline and more
// messages are sent to everyone; then the server is restarted (SIGTERM, or SIGKILL) on the same
// data directory. Every client reconnects as a real one does (full-jitter backoff 0.5 s doubling
// up to 30 s, Retry-After as a floor, the numbers of client/src/backoff.ts), resumes with
// `?after=<greatest id received>` (docs/protocol.md, one SQLite node) and must end up with every
// message addressed to it exactly once. Right after the server is back, the senders send one more
// message to every receiver, so that replays and live deliveries overlap.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { AccessTokens } from '../../src/auth/tokens.js';
import { Passwords } from '../../src/auth/passwords.js';
import { HttpClient } from '../lib/http.js';
import { CpuMeter, isRunning, round, rssKiB, sleep, type Child } from '../lib/proc.js';

export const STORM_PASSWORD = 'bench passphrase 0123456789';
/** Connections per loopback source address (ports: 28,000 ephemeral per address here). */
const PER_ADDRESS = 5000;

export interface StormSettings {
  /** K: receivers, one user and one connection each. */
  connections: number;
  /** Users that send to the receivers (receiver i hears from sender i mod S). */
  senders: number;
  /** Messages to every receiver while all are online (phase 1). */
  before: number;
  /** Share of receivers that go offline before the restart (phase 2). */
  offlineShare: number;
  /** Messages to every receiver while that share is offline (phase 2). */
  whileOffline: number;
  /** Messages to every receiver right after the restarted server is ready (phase 3). */
  afterRestart: number;
  /** Handshakes in flight while the receivers first connect. */
  concurrency: number;
  /** Messages in flight per sender. */
  window: number;
  /** SIGKILL instead of SIGTERM. */
  kill: boolean;
  /** Run the server with its default RATE_* limits instead of raised ones. */
  defaultLimits: boolean;
  /** Seconds to wait, after the restart, for every client to catch up. */
  catchUpLimitSec: number;
  /** Authenticate every handshake with a ticket (as the typed client and browsers), not a Bearer header. */
  tickets: boolean;
  /** Leave the sessions as the first connections touched them (no lastUsedAt write at reconnect). */
  freshSessions: boolean;
  /** Backoff numbers of the typed client (client/src/backoff.ts). */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** The server under test: started, restarted and stopped by the entry point. */
export interface StormServer {
  child(): Child;
  baseUrl: string;
  wsUrl: string;
  /** Stops the server with the signal and starts a fresh one on the same data directory. */
  restart(signal: 'SIGTERM' | 'SIGKILL'): Promise<{ exitedMs: number; agingMs: number }>;
}

interface Seeded {
  id: string;
  username: string;
  token: string;
}

/**
 * Creates the schema (the server's own migrations), then S + K users with one session each in
 * one transaction, and signs their access tokens with the server's secret.
 */
export async function seed(
  dataDir: string,
  jwtSecret: string,
  receivers: number,
  senders: number,
): Promise<{ receivers: Seeded[]; senders: Seeded[]; seedSec: number }> {
  const t0 = performance.now();
  const file = path.join(dataDir, 'chat.db');
  const store = await openSqliteStore({ file });
  await store.close();
  // One real argon2id hash (a password nobody uses here): the rows look like registered ones.
  const passwordHash = await new Passwords({ memoryCostKiB: 19_456, timeCost: 2 }).hash(
    STORM_PASSWORD,
  );
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const now = new Date();
  const created = now.toISOString();
  const expires = new Date(now.getTime() + 7 * 86_400_000).toISOString();
  const insertUser = db.prepare<[string, string, string, string], { id: number }>(
    'INSERT INTO users (username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id',
  );
  const insertSession = db.prepare<[string, number, string, string, string]>(
    'INSERT INTO sessions (id, user_id, created_at, user_agent, expires_at) VALUES (?, ?, ?, ?, ?)',
  );
  const names = [
    ...Array.from({ length: senders }, (_, i) => `ssnd${i}`),
    ...Array.from({ length: receivers }, (_, i) => `srcv${i}`),
  ];
  const rows = db.transaction(() =>
    names.map((username) => {
      const { id } = insertUser.get(username, username, passwordHash, created) as { id: number };
      const sessionId = randomBytes(16).toString('base64url');
      insertSession.run(sessionId, id, created, 'bench storm', expires);
      return { id: String(id), username, sessionId };
    }),
  )();
  db.close();
  const tokens = new AccessTokens(jwtSecret, 3600);
  const out: Seeded[] = [];
  for (const r of rows) {
    out.push({
      id: r.id,
      username: r.username,
      token: await tokens.sign({ userId: r.id, sessionId: r.sessionId }),
    });
  }
  return {
    senders: out.slice(0, senders),
    receivers: out.slice(senders),
    seedSec: round((performance.now() - t0) / 1000, 2),
  };
}

/**
 * Makes every session last used an hour ago (the server is down meanwhile), as for clients that
 * have been connected for a while: the server then records a use (`lastUsedAt`, a write) at every
 * reconnect, as it would after a real restart. Returns the milliseconds it took.
 */
export function ageSessions(dataDir: string): number {
  const t0 = performance.now();
  const db = new Database(path.join(dataDir, 'chat.db'));
  db.prepare('UPDATE sessions SET last_used_at = ?').run(
    new Date(Date.now() - 3_600_000).toISOString(),
  );
  db.close();
  return round(performance.now() - t0, 0);
}

/**
 * Loopback source addresses 127.<second>.<b>.<c> (c from 2 to 251), a second octet of their own
 * per run (from 100 on, apart from the idle scenario's 127.0.x.y), so that no TIME_WAIT socket of
 * an earlier run holds a port.
 */
function sourceAddresses(count: number, second: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `127.${100 + (second % 150)}.${Math.floor(i / 250)}.${(i % 250) + 2}`,
  );
}

/** Full-jitter backoff exactly as client/src/backoff.ts: U(0, min(max, base * 2^attempt)). */
class Backoff {
  attempt = 0;
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}
  next(retryAfterSec?: number): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    const jitter = Math.floor(Math.random() * ceiling);
    this.attempt += 1;
    return retryAfterSec === undefined ? jitter : Math.max(retryAfterSec * 1000, jitter);
  }
}

interface Counters {
  /** Handshakes refused, by HTTP status. */
  refused: Record<string, number>;
  /** Connection attempts that failed without an HTTP answer, by error code. */
  failed: Record<string, number>;
  /** Close codes of open connections closed by the server. */
  closes: Record<string, number>;
  /** Error frames received, by code. */
  errorFrames: Record<string, number>;
  opens: number;
  /** performance.now() of every successful open (for handshakes/s). */
  openTimes: number[];
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** One receiver: a raw `ws` client that reconnects, resumes from its cursor, and checks. */
class Receiver {
  ws: WebSocket | undefined;
  /** Wanted online: reconnects after a close while true. */
  wanted = false;
  cursor = 0;
  readonly received = new Set<number>();
  /** Every id acked to a sender for this receiver. */
  readonly expected = new Set<number>();
  duplicates = 0;
  /** Messages from before the restart not received yet (filled at the restart). */
  missing: Set<number> | undefined;
  syncedSinceOpen = false;
  openedAt: number | undefined;
  caughtUpAt: number | undefined;
  attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;

  constructor(
    readonly index: number,
    readonly user: Seeded,
    private readonly url: string,
    private readonly localAddress: string,
    private readonly counters: Counters,
    s: StormSettings,
    /** Set: get a ticket (`POST /websocket/ticket`) before each handshake, as the typed client does. */
    private readonly tickets?: HttpClient,
  ) {
    this.backoff = new Backoff(s.backoffBaseMs, s.backoffMaxMs);
  }

  /** Connects now; resolves at the first open or refusal (reconnects go on by themselves). */
  connect(): Promise<boolean> {
    this.wanted = true;
    return new Promise((resolve) => this.attempt(resolve));
  }

  private attempt(settled?: (ok: boolean) => void): void {
    this.timer = undefined;
    if (!this.wanted) return settled?.(false);
    this.attempts += 1;
    this.syncedSinceOpen = false;
    if (!this.tickets) return this.open(`after=${this.cursor}`, true, settled);
    this.tickets
      .request<{ ticket?: string }>('POST', '/websocket/ticket', {
        token: this.user.token,
        timeoutMs: 60_000,
      })
      .then(
        (res) => {
          if (res.status === 200 && typeof res.body?.ticket === 'string') {
            return this.open(`ticket=${res.body.ticket}&after=${this.cursor}`, false, settled);
          }
          bump(this.counters.refused, `ticket ${res.status}`);
          settled?.(false);
          if (this.wanted) this.retry();
        },
        (error: NodeJS.ErrnoException) => {
          bump(this.counters.failed, `ticket ${error.code ?? error.message.slice(0, 30)}`);
          settled?.(false);
          if (this.wanted) this.retry();
        },
      );
  }

  private open(query: string, bearer: boolean, settled?: (ok: boolean) => void): void {
    if (!this.wanted) return settled?.(false);
    const ws = new WebSocket(`${this.url}?${query}`, {
      headers: bearer ? { authorization: `Bearer ${this.user.token}` } : {},
      perMessageDeflate: false,
      // The typed client sets no handshake timeout (it waits for the TCP connection's own);
      // 60 s only bounds the run.
      handshakeTimeout: 60_000,
      localAddress: this.localAddress,
    });
    this.ws = ws;
    let done = false;
    let opened = false;
    const fail = (kind: 'refused' | 'failed' | 'closed', key: string, retryAfter?: number) => {
      if (done) return;
      done = true;
      if (this.ws === ws) this.ws = undefined;
      // Closes the bench made itself (drop) are not the server's doing.
      if (!this.wanted) return settled?.(false);
      if (kind === 'refused') bump(this.counters.refused, key);
      else if (kind === 'failed') bump(this.counters.failed, key);
      else bump(this.counters.closes, key);
      settled?.(false);
      if (this.wanted) this.retry(retryAfter);
    };
    ws.on('unexpected-response', (_req, res) => {
      const header = res.headers['retry-after'];
      const retryAfter = header === undefined ? undefined : Number(header);
      res.resume();
      ws.terminate();
      fail('refused', String(res.statusCode), Number.isFinite(retryAfter) ? retryAfter : undefined);
    });
    ws.on('error', (error: NodeJS.ErrnoException) => {
      if (!opened) fail('failed', error.code ?? error.message.slice(0, 40));
    });
    ws.on('open', () => {
      opened = true;
      this.openedAt = performance.now();
      this.counters.opens += 1;
      this.counters.openTimes.push(this.openedAt);
      settled?.(true);
      settled = undefined;
    });
    ws.on('close', (code) => {
      if (opened) fail('closed', String(code));
      else fail('failed', 'closed before open');
    });
    ws.on('message', (data) => this.onFrame(data.toString()));
  }

  private retry(retryAfterSec?: number): void {
    const delay = this.backoff.next(retryAfterSec);
    this.timer = setTimeout(() => this.attempt(), delay);
  }

  private onFrame(text: string): void {
    let frame: { type?: string; id?: string; lastId?: string | null; code?: string };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      bump(this.counters.errorFrames, 'unparsable');
      return;
    }
    switch (frame.type) {
      case 'message': {
        const id = Number(frame.id);
        if (this.received.has(id)) this.duplicates += 1;
        else {
          this.received.add(id);
          this.missing?.delete(id);
        }
        if (id > this.cursor) this.cursor = id;
        break;
      }
      case 'synced':
        this.syncedSinceOpen = true;
        // The typed client resets its backoff once it is online again (after `synced`).
        this.backoff.attempt = 0;
        if (frame.lastId && Number(frame.lastId) > this.cursor) this.cursor = Number(frame.lastId);
        break;
      case 'error':
        bump(this.counters.errorFrames, String(frame.code));
        break;
      default:
        return;
    }
    this.checkCaughtUp();
  }

  checkCaughtUp(): void {
    if (
      this.caughtUpAt === undefined &&
      this.missing !== undefined &&
      this.syncedSinceOpen &&
      this.missing.size === 0
    ) {
      this.caughtUpAt = performance.now();
    }
  }

  /** Goes offline (terminates, no reconnect) until connect() again. */
  drop(): void {
    this.wanted = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.ws?.terminate();
    this.ws = undefined;
  }

  /** Received, but acked to no sender for this receiver (counted at the end: an ack can come after the delivery). */
  get unexpected(): number {
    let n = 0;
    for (const id of this.received) if (!this.expected.has(id)) n += 1;
    return n;
  }

  get lost(): number {
    let n = 0;
    for (const id of this.expected) if (!this.received.has(id)) n += 1;
    return n;
  }
}

/** A sender: one connection (no replay), W messages in flight, acks recorded per receiver. */
class Sender {
  private ws: WebSocket | undefined;
  private readonly pending = new Map<string, { receiver: Receiver; resolve: () => void }>();
  private sent = 0;

  constructor(
    readonly user: Seeded,
    private readonly url: string,
    private readonly localAddress: string,
    private readonly counters: Counters,
  ) {}

  async connect(): Promise<void> {
    const ws = new WebSocket(this.url, {
      headers: { authorization: `Bearer ${this.user.token}` },
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
      localAddress: this.localAddress,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`sender handshake refused: HTTP ${res.statusCode}`)),
      );
      ws.once('error', reject);
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as {
        type?: string;
        clientId?: string;
        id?: string;
        code?: string;
      };
      if (frame.type === 'ack' && frame.clientId) {
        const p = this.pending.get(frame.clientId);
        if (!p) return;
        this.pending.delete(frame.clientId);
        p.receiver.expected.add(Number(frame.id));
        p.resolve();
      } else if (frame.type === 'error') {
        bump(this.counters.errorFrames, `sender ${frame.code}`);
      }
    });
    // Unacked sends at a close are not retried: the bench sends only while the server is up.
    ws.on('close', () => {
      this.ws = undefined;
    });
    this.ws = ws;
  }

  close(): void {
    this.ws?.terminate();
    this.ws = undefined;
  }

  /** Sends one message to each receiver in turn, `window` in flight; resolves when all are acked. */
  async sendTo(receivers: Receiver[], tag: string, window: number, deadline: number) {
    let next = 0;
    const one = async (): Promise<void> => {
      while (next < receivers.length && performance.now() < deadline) {
        const receiver = receivers[next++] as Receiver;
        const clientId = `${tag}-${this.sent++}`;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            this.pending.delete(clientId);
            reject(new Error(`no ack for ${clientId} in 30 s`));
          }, 30_000);
          this.pending.set(clientId, {
            receiver,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
          if (!this.ws) return reject(new Error('sender not connected'));
          this.ws.send(
            JSON.stringify({
              receiver: receiver.user.username,
              content: `${tag} to ${receiver.user.username}: storm test message`,
              clientId,
            }),
          );
        });
      }
    };
    await Promise.all(Array.from({ length: window }, one));
  }
}

export interface Quantiles {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest rank: the smallest value with at least q% of the values at or below it. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1)] as number;
}

function quantiles(ms: number[]): Quantiles {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50), 0),
    p99: round(percentile(sorted, 99), 0),
    max: round(sorted[sorted.length - 1] ?? NaN, 0),
  };
}

export interface StormResult {
  settings: StormSettings;
  seedSec: number;
  initial: {
    openSec: number;
    handshakesPerSec: number;
    failed: number;
    rssBeforeKiB: number;
    rssAfterKiB: number;
    heapBeforeMiB: number;
    heapAfterMiB: number;
  };
  /** Messages acked per phase. */
  sent: { before: number; whileOffline: number; afterRestart: number };
  offline: number;
  restart: {
    signal: string;
    /** Signal to the old process gone. */
    exitedMs: number;
    /** The bench aging the sessions while the server is down (see ageSessions). */
    agingMs: number;
    /** Signal to /readyz answering 200 on the new process. */
    readyMs: number;
  };
  /** Milliseconds from the signal. */
  reconnected: Quantiles;
  caughtUp: Quantiles;
  notCaughtUp: number;
  /** Signal to the last message of phase 3 received by every receiver. */
  allDeliveredMs: number | null;
  storm: {
    handshakes: number;
    /** Handshakes from the server being ready to the last reconnect. */
    handshakesPerSec: number;
    peakHandshakesPerSec: number;
    /** Clients that caught up in each second after the signal (second 0 first). */
    caughtUpPerSecond: number[];
    attempts: number;
    serverCpuPct: number;
    peakServerCpuPct: number;
    peakRssKiB: number;
    rssAfterKiB: number;
    /** Largest nodejs_eventloop_lag_max_seconds seen in /metrics, polled every second. */
    maxEventLoopLagMs: number | null;
    /** Slowest answer to the once-a-second /metrics poll. */
    slowestPollMs: number | null;
    listenOverflows: number;
    listenDrops: number;
  };
  counters: Counters;
  lost: number;
  duplicated: number;
  unexpected: number;
  generatorRssMiB: number;
}

/** TcpExt ListenOverflows and ListenDrops (the whole machine's, loopback included). */
function listenCounters(): { overflows: number; drops: number } {
  try {
    const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const header = lines.find((l) => l.startsWith('TcpExt:'))?.split(/\s+/) ?? [];
    const values = lines.filter((l) => l.startsWith('TcpExt:'))[1]?.split(/\s+/) ?? [];
    const get = (k: string) => Number(values[header.indexOf(k)] ?? NaN);
    return { overflows: get('ListenOverflows'), drops: get('ListenDrops') };
  } catch {
    return { overflows: NaN, drops: NaN };
  }
}

async function metric(http: HttpClient, name: string): Promise<number> {
  const res = await http.request<string>('GET', '/metrics', { timeoutMs: 10_000 });
  const text = typeof res.body === 'string' ? res.body : '';
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

export async function storm(
  server: StormServer,
  users: { receivers: Seeded[]; senders: Seeded[]; seedSec: number },
  s: StormSettings,
  runIndex: number,
  log: (line: string) => void,
): Promise<StormResult> {
  const counters: Counters = {
    refused: {},
    failed: {},
    closes: {},
    errorFrames: {},
    opens: 0,
    openTimes: [],
  };
  const addresses = sourceAddresses(Math.ceil((s.connections + s.senders) / PER_ADDRESS), runIndex);
  // Tickets over keep-alive HTTP connections, 64 at a time (a browser has its own; few are needed).
  const tickets = s.tickets ? new HttpClient(server.baseUrl, 64) : undefined;
  const receivers = users.receivers.map(
    (u, i) =>
      new Receiver(
        i,
        u,
        server.wsUrl,
        addresses[Math.floor(i / PER_ADDRESS)] as string,
        counters,
        s,
        tickets,
      ),
  );
  const senderAddress = addresses[addresses.length - 1] as string;
  const senders = users.senders.map((u) => new Sender(u, server.wsUrl, senderAddress, counters));
  let http = new HttpClient(server.baseUrl, 2);
  try {
    // 1. Everyone connects.
    const heapBefore = (await metric(http, 'nodejs_heap_size_used_bytes')) / 2 ** 20;
    const rssBefore = rssKiB(server.child().pid);
    const openStart = performance.now();
    let next = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: Math.min(s.concurrency, receivers.length) }, async () => {
        while (next < receivers.length && isRunning(server.child())) {
          const r = receivers[next++] as Receiver;
          if (!(await r.connect())) failed += 1;
        }
      }),
    );
    const openSec = (performance.now() - openStart) / 1000;
    await sleep(2000);
    const initial = {
      openSec: round(openSec, 2),
      handshakesPerSec: Math.round((receivers.length - failed) / openSec),
      failed,
      rssBeforeKiB: rssBefore,
      rssAfterKiB: rssKiB(server.child().pid),
      heapBeforeMiB: round(heapBefore, 1),
      heapAfterMiB: round((await metric(http, 'nodejs_heap_size_used_bytes')) / 2 ** 20, 1),
    };
    log(
      `storm: ${receivers.length - failed} receivers connected in ${initial.openSec} s (${initial.handshakesPerSec}/s), ${failed} failed`,
    );
    await Promise.all(senders.map((x) => x.connect()));

    const bySender = (list: Receiver[]) =>
      senders.map((_, j) => list.filter((r) => r.index % senders.length === j));
    const sendPhase = async (list: Receiver[], rounds: number, tag: string) => {
      const groups = bySender(list);
      const deadline = performance.now() + 120_000;
      for (let n = 0; n < rounds; n++) {
        await Promise.all(
          senders.map((x, j) =>
            x.sendTo(groups[j] as Receiver[], `${tag}${n}`, s.window, deadline),
          ),
        );
      }
      return list.length * rounds;
    };
    /** Waits (bounded) until every online receiver holds everything expected. */
    const settled = async (list: Receiver[], limitMs: number) => {
      const end = performance.now() + limitMs;
      while (performance.now() < end && list.some((r) => r.lost > 0)) await sleep(200);
    };

    // Phase 1: everyone online gets `before` messages.
    const t1 = performance.now();
    const sentBefore = await sendPhase(receivers, s.before, 'b');
    await settled(receivers, 30_000);
    log(
      `storm: phase 1, ${sentBefore} messages acked and delivered in ${round((performance.now() - t1) / 1000, 1)} s`,
    );

    // Phase 2: a share goes offline; everyone gets `whileOffline` more.
    const offline = receivers.filter((r) => r.index % Math.round(1 / s.offlineShare) === 0);
    if (s.offlineShare > 0) for (const r of offline) r.drop();
    await sleep(500);
    const sentOffline = await sendPhase(receivers, s.whileOffline, 'o');
    const online = receivers.filter((r) => r.wanted);
    await settled(online, 30_000);
    log(
      `storm: phase 2, ${offline.length} offline, ${sentOffline} messages acked; online receivers up to date`,
    );

    // The restart. Every receiver must end with what was acked so far.
    for (const r of receivers) {
      r.missing = new Set([...r.expected].filter((id) => !r.received.has(id)));
      r.caughtUpAt = undefined;
    }
    for (const x of senders) x.close();
    const listenBefore = listenCounters();
    const opensBefore = counters.opens;
    const signal = s.kill ? 'SIGKILL' : 'SIGTERM';
    const t0 = performance.now();
    const restarting = server.restart(signal);
    // The offline share comes back with the storm, with the same backoff.
    for (const r of offline) void r.connect();
    const { exitedMs, agingMs } = await restarting;
    http.close();
    http = new HttpClient(server.baseUrl, 2);
    const readyMs = round(performance.now() - t0, 0);
    log(
      `storm: ${signal}, old process gone after ${exitedMs} ms, new one ready at ${readyMs} ms (sessions aged in ${agingMs} ms)`,
    );
    const readyAt = performance.now();

    // Server CPU, RSS and event loop during the storm, sampled while it lasts.
    const pid = server.child().pid;
    const cpu = new CpuMeter(pid);
    let peakRss = 0;
    let peakCpu = 0;
    let maxLag: number | null = null;
    let slowestPoll: number | null = null;
    let sampling = true;
    const sampler = (async () => {
      let last = { cpu: new CpuMeter(pid) };
      while (sampling && isRunning(server.child())) {
        await sleep(1000);
        peakRss = Math.max(peakRss, rssKiB(pid));
        peakCpu = Math.max(peakCpu, last.cpu.stop().pct);
        last = { cpu: new CpuMeter(pid) };
        const asked = performance.now();
        try {
          const lag = await metric(http, 'nodejs_eventloop_lag_max_seconds');
          if (Number.isFinite(lag)) maxLag = Math.max(maxLag ?? 0, lag * 1000);
          slowestPoll = Math.max(slowestPoll ?? 0, performance.now() - asked);
        } catch {
          /* a timeout: the slowest poll is at least that */
          slowestPoll = Math.max(slowestPoll ?? 0, performance.now() - asked);
        }
      }
    })();

    // Phase 3: the senders come back at once and send to everyone.
    await Promise.all(senders.map((x) => x.connect()));
    const sentAfter = await sendPhase(receivers, s.afterRestart, 'a');
    log(`storm: phase 3, ${sentAfter} messages acked after the restart`);

    const limit = readyAt + s.catchUpLimitSec * 1000;
    let allDeliveredAt: number | undefined;
    while (performance.now() < limit) {
      if (
        receivers.every((r) => r.caughtUpAt !== undefined) &&
        receivers.every((r) => r.lost === 0)
      ) {
        allDeliveredAt = performance.now();
        break;
      }
      await sleep(250);
    }
    const stormCpu = cpu.stop();
    sampling = false;
    await sampler;
    const listenAfter = listenCounters();
    const reopened = counters.openTimes.slice(opensBefore);
    const lastOpen = reopened.length > 0 ? Math.max(...reopened) : readyAt;
    const perSecond = new Map<number, number>();
    for (const t of reopened) {
      const k = Math.floor((t - t0) / 1000);
      perSecond.set(k, (perSecond.get(k) ?? 0) + 1);
    }
    const caughtPerSecond: number[] = [];
    for (const r of receivers) {
      if (r.caughtUpAt === undefined) continue;
      const k = Math.floor((r.caughtUpAt - t0) / 1000);
      caughtPerSecond[k] = (caughtPerSecond[k] ?? 0) + 1;
    }
    const since = (t: number | undefined) => (t === undefined ? [] : [t - t0]);
    const lost = receivers.reduce((n, r) => n + r.lost, 0);
    return {
      settings: s,
      seedSec: users.seedSec,
      initial,
      sent: { before: sentBefore, whileOffline: sentOffline, afterRestart: sentAfter },
      offline: offline.length,
      restart: { signal, exitedMs, agingMs, readyMs },
      reconnected: quantiles(
        receivers.flatMap((r) => since(r.openedAt && r.openedAt > t0 ? r.openedAt : undefined)),
      ),
      caughtUp: quantiles(receivers.flatMap((r) => since(r.caughtUpAt))),
      notCaughtUp: receivers.filter((r) => r.caughtUpAt === undefined).length,
      allDeliveredMs: allDeliveredAt === undefined ? null : round(allDeliveredAt - t0, 0),
      storm: {
        handshakes: reopened.length,
        handshakesPerSec: Math.round(reopened.length / Math.max((lastOpen - readyAt) / 1000, 1e-3)),
        peakHandshakesPerSec: Math.max(0, ...perSecond.values()),
        caughtUpPerSecond: Array.from(caughtPerSecond, (n) => n ?? 0),
        attempts: receivers.reduce((n, r) => n + r.attempts, 0) - receivers.length,
        serverCpuPct: stormCpu.pct,
        peakServerCpuPct: peakCpu,
        peakRssKiB: peakRss,
        rssAfterKiB: isRunning(server.child()) ? rssKiB(pid) : NaN,
        maxEventLoopLagMs: maxLag === null ? null : round(maxLag, 0),
        slowestPollMs: slowestPoll === null ? null : round(slowestPoll, 0),
        listenOverflows: listenAfter.overflows - listenBefore.overflows,
        listenDrops: listenAfter.drops - listenBefore.drops,
      },
      counters: { ...counters, openTimes: [] },
      lost,
      duplicated: receivers.reduce((n, r) => n + r.duplicates, 0),
      unexpected: receivers.reduce((n, r) => n + r.unexpected, 0),
      generatorRssMiB: round(process.memoryUsage().rss / 2 ** 20, 0),
    };
  } finally {
    for (const r of receivers) r.drop();
    for (const x of senders) x.close();
    http.close();
    tickets?.close();
  }
}
