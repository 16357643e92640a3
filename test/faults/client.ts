// A chat client that behaves as docs/protocol.md tells clients to, and records everything it does
// in a Recorder: it keeps a cursor (the greatest id of a `message` frame, or `synced.lastId`),
// keeps unacked messages, reconnects with backoff and jitter after a close (except 4001 and a 401
// or 403 handshake), opens with `?after=<cursor>` and resends unacked messages with their original
// clientId once `synced` arrives; `internal_error` and `rate_limited` are retried the same way.
import WebSocket from 'ws';
import { request, type Account } from '../helpers/server.js';
import { compareIds } from './checker.js';
import type { Recorder, SendAttempt, StoredMessage } from './recorder.js';
import { sleep, until } from './process.js';

/** Where a client connects; read again at every reconnect. */
export interface Target {
  url: string;
  wsUrl: string;
}

/** Contents that are easy to get wrong in transit: multi-byte, combining, joiners, RTL, JSON. */
const PAYLOADS = [
  'plain ascii',
  'é vs e\u0301, ß, Ångström',
  '👋🏽 👩‍👩‍👧‍👦 🏳️‍🌈 emoji with joiners and modifiers',
  'שלום עולם مرحبا بالعالم (right to left)',
  '中文 日本語 한국어',
  '"quotes" \\ backslash \t tab \n newline {"json":[1,2]}',
  '\u200b zero width \ufeff BOM-like \u2028 line separator',
  '𝕳𝖊𝖑𝖑𝖔 astral plane 𐍈',
];

/** A payload for message n: one of the above, some of them long (near the 4000 code point limit). */
export function payload(n: number): string {
  const base = PAYLOADS[n % PAYLOADS.length]!;
  if (n % 50 !== 7) return base;
  const codePoints = [...'🙂é中'];
  return Array.from({ length: 3950 }, (_, i) => codePoints[i % codePoints.length]).join('');
}

interface Unacked {
  receiver: string;
  content: string;
  /** The attempt on the wire, if any. */
  attempt?: SendAttempt;
  /** When a retry is due (after internal_error or rate_limited). */
  retryAt?: number;
}

export interface FaultClientOptions {
  /** Resend after `internal_error` / `rate_limited`, and after reconnecting (default true). */
  retry?: boolean;
  /**
   * Where a reconnect (and GET /sync) resumes: `cursor`, the greatest id received (the rule for
   * one node, protocol.md), or `synced`, the last `synced.lastId` or `lastId` of GET /sync (the
   * rule for several nodes, where live messages can arrive out of id order or not at all).
   */
  resume?: 'cursor' | 'synced';
  /** First reconnect delay (ms), doubled up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

export class FaultClient {
  /** The greatest id received in a `message` frame or as `synced.lastId`. */
  cursor = '0';
  /** The last `synced.lastId` (or `lastId` of GET /sync). */
  syncedCursor = '0';
  ws: WebSocket | undefined;
  /** True between `synced` and the next close. */
  synced = false;
  /** Close codes and refused handshake statuses, in order. */
  readonly closes: number[] = [];
  private readonly unacked = new Map<string, Unacked>();
  private sent = 0;
  private connections = 0;
  private stopped = false;
  private backoff: number;
  private readonly retry: boolean;
  private readonly resume: 'cursor' | 'synced';
  private readonly maxBackoff: number;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly account: Account,
    readonly target: () => Target,
    readonly recorder: Recorder,
    options: FaultClientOptions = {},
  ) {
    this.retry = options.retry ?? true;
    this.resume = options.resume ?? 'cursor';
    this.backoff = options.backoffMs ?? 100;
    this.maxBackoff = options.maxBackoffMs ?? 1000;
  }

  get name(): string {
    return this.account.username;
  }

  get pending(): number {
    return this.unacked.size;
  }

  /** Connects (and keeps reconnecting); resolves once the first `synced` arrives. */
  async start(timeoutMs = 10_000): Promise<void> {
    this.stopped = false;
    this.connect();
    await until(() => this.synced, `${this.name} to sync`, timeoutMs);
  }

  /** Sends a new message (now if connected, else after the next sync); returns its clientId. */
  send(receiver: string, text = payload(this.sent)): string {
    const clientId = `${this.name}.${this.sent++}`;
    const m: Unacked = { receiver, content: `${clientId} ${text}` };
    this.unacked.set(clientId, m);
    if (this.ws?.readyState === WebSocket.OPEN) this.transmit(clientId, m);
    return clientId;
  }

  /** Waits until every message is acked or definitely refused; false on timeout. */
  async settle(timeoutMs = 10_000): Promise<boolean> {
    try {
      await until(() => this.unacked.size === 0, `${this.name} to settle`, timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the socket from this side and reconnects: a client-side reconnect with sync. */
  async reconnect(timeoutMs = 10_000): Promise<void> {
    this.synced = false;
    this.ws?.terminate();
    await until(() => this.synced, `${this.name} to sync again`, timeoutMs);
  }

  /** Where a reconnect or GET /sync resumes (see FaultClientOptions.resume). */
  get resumeFrom(): string {
    return this.resume === 'cursor' ? this.cursor : this.syncedCursor;
  }

  /** Pages GET /sync from where it resumes until `hasMore` is false, recording each message. */
  async syncHttp(): Promise<void> {
    for (;;) {
      const res = await request(this.target(), 'GET', `/sync?after=${this.resumeFrom}&limit=1000`, {
        token: this.account.token,
      });
      if (res.status !== 200)
        throw new Error(`GET /sync: ${res.status} ${JSON.stringify(res.body)}`);
      for (const m of res.body.messages as StoredMessage[]) {
        this.recorder.deliver(this.name, 'http', 'http', m);
        this.advance(m.id);
      }
      if (res.body.lastId) {
        this.advance(res.body.lastId);
        this.syncedCursor = res.body.lastId;
      }
      if (!res.body.hasMore) return;
    }
  }

  /** Stops reconnecting and closes; unanswered attempts stay unknown. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.terminate();
  }

  private connect(): void {
    if (this.stopped) return;
    const id = String(++this.connections);
    const ws = new WebSocket(`${this.target().wsUrl}?after=${this.resumeFrom}`, {
      headers: { authorization: `Bearer ${this.account.token}` },
    });
    this.ws = ws;
    let replaying = true;
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      switch (f.type) {
        case 'message': {
          const { type: _type, ...m } = f;
          this.recorder.deliver(this.name, id, replaying ? 'replay' : 'live', m);
          this.advance(m.id);
          break;
        }
        case 'synced':
          replaying = false;
          if (f.lastId) {
            this.advance(f.lastId);
            this.syncedCursor = f.lastId;
          }
          this.synced = true;
          this.backoff = 100;
          for (const [clientId, m] of this.unacked) if (!m.attempt) this.transmit(clientId, m);
          break;
        case 'ack':
          this.answered(f.clientId, (a) => this.recorder.ok(a, f.id, f.createdAt), true);
          break;
        case 'error':
          if (f.clientId === undefined) break;
          this.answered(
            f.clientId,
            (a) => this.recorder.error(a, f.code),
            !(this.retry && (f.code === 'internal_error' || f.code === 'rate_limited')),
          );
          break;
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      this.closes.push(res.statusCode ?? 0);
      if (res.statusCode === 401 || res.statusCode === 403) this.stopped = true;
      ws.terminate();
    });
    ws.on('error', () => {}); // followed by 'close'
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.synced = false;
      this.closes.push(code);
      for (const [clientId, m] of this.unacked) {
        if (m.attempt) this.recorder.unknown(m.attempt, `connection closed (${code})`);
        m.attempt = undefined;
        if (!this.retry) this.unacked.delete(clientId);
      }
      if (code === 4001) this.stopped = true;
      if (this.stopped) return;
      const delay = this.backoff * (0.5 + Math.random());
      this.backoff = Math.min(this.backoff * 2, this.maxBackoff);
      setTimeout(() => this.connect(), delay);
    });
  }

  private transmit(clientId: string, m: Unacked): void {
    m.retryAt = undefined;
    m.attempt = this.recorder.invoke({
      process: this.name,
      sender: this.name,
      receiver: m.receiver,
      clientId,
      content: m.content,
    });
    this.ws!.send(JSON.stringify({ receiver: m.receiver, content: m.content, clientId }));
  }

  /** An ack or error for `clientId`: records it; `done` drops the message, else it is retried. */
  private answered(clientId: string, record: (a: SendAttempt) => void, done: boolean): void {
    const m = this.unacked.get(clientId);
    if (!m?.attempt) return;
    record(m.attempt);
    m.attempt = undefined;
    if (done || !this.retry) {
      this.unacked.delete(clientId);
      return;
    }
    m.retryAt = Date.now() + this.backoff * (0.5 + Math.random());
    this.scheduleRetries();
  }

  private scheduleRetries(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      let later = false;
      for (const [clientId, m] of this.unacked) {
        if (m.attempt || m.retryAt === undefined) continue;
        if (m.retryAt > Date.now() || !this.synced) {
          later = true;
          continue;
        }
        m.retryAt = undefined;
        this.transmit(clientId, m);
      }
      if (later && !this.stopped) this.scheduleRetries();
    }, 50);
  }

  private advance(id: string): void {
    if (compareIds(id, this.cursor) > 0) this.cursor = id;
  }
}

/** Every message stored in the streams of `accounts`, read over GET /sync (each once). */
export async function readStored(target: Target, accounts: Account[]): Promise<StoredMessage[]> {
  const byId = new Map<string, StoredMessage>();
  for (const a of accounts) {
    let after = '0';
    for (;;) {
      const res = await request(target, 'GET', `/sync?after=${after}&limit=1000`, {
        token: a.token,
      });
      if (res.status !== 200)
        throw new Error(`GET /sync: ${res.status} ${JSON.stringify(res.body)}`);
      for (const m of res.body.messages as StoredMessage[]) byId.set(m.id, m);
      if (!res.body.hasMore) break;
      after = res.body.lastId;
    }
  }
  return [...byId.values()].sort((a, b) => compareIds(a.id, b.id));
}

/** Sends `count` messages from each sender, spread over the receivers, `perTick` at a time. */
export async function load(
  senders: FaultClient[],
  receivers: string[],
  count: number,
  options: { perTick?: number; tickMs?: number; until?: () => boolean } = {},
): Promise<void> {
  const perTick = options.perTick ?? 10;
  for (let i = 0; i < count; i += perTick) {
    if (options.until?.()) return;
    for (const s of senders)
      for (let k = i; k < Math.min(count, i + perTick); k++)
        s.send(receivers[(k + senders.indexOf(s)) % receivers.length]!);
    await sleep(options.tickMs ?? 5);
  }
}
