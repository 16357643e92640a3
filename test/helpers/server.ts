// Starts a real server on port 0 (SQLite in a temporary directory and a memory bus, unless the
// caller passes the store and bus of a deployment) and gives
// small helpers for real HTTP and WebSocket clients.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import WebSocket from 'ws';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import type { Store } from '../../src/storage/store.js';
import type { Bus } from '../../src/bus/bus.js';
import type { Presence } from '../../src/bus/presence.js';
import type { Limits } from '../../src/limits/limits.js';

export interface TestServer {
  app: FastifyInstance;
  store: Store;
  config: Config;
  url: string;
  wsUrl: string;
  dir: string;
  close(): Promise<void>;
}

/** What a node of a deployment shares with the others; SQLite and a memory bus by default. */
export interface NodeDeps {
  store?: Store;
  bus?: Bus;
  presence?: Presence;
  sharedRateLimits?: AppDeps['sharedRateLimits'];
  limits?: Limits;
  jwtSecret?: string;
  /** A logger of the test's own (e.g. writing to a captured stream); silent by default. */
  logger?: FastifyBaseLogger;
  /** The browser client's build directory (web/dist by default). */
  webRoot?: string;
}

/** Where a server keeps its data and listens; a restart reuses both. */
export interface StartOptions {
  /** This data directory (kept on close) instead of a new temporary one (removed on close). */
  dir?: string;
  /** This port instead of any free one. */
  port?: number;
}

/**
 * Settings for tests: cheapest argon2 the policy allows, generous limits unless overridden.
 * `close()` closes the store and bus only when this function opened them.
 */
export async function startServer(
  env: Record<string, string> = {},
  deps: NodeDeps = {},
  options: StartOptions = {},
): Promise<TestServer> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'chat-test-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: dir,
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const store = deps.store ?? (await openSqliteStore({ file: path.join(dir, 'chat.db') }));
  const bus = deps.bus ?? new MemoryBus();
  const app = await buildApp({
    config,
    store,
    bus,
    presence: deps.presence,
    sharedRateLimits: deps.sharedRateLimits,
    limits: deps.limits,
    logger: deps.logger ?? pino({ level: 'silent' }),
    jwtSecret: deps.jwtSecret ?? 'test-secret-that-is-at-least-32-characters',
    webRoot: deps.webRoot,
  });
  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    app,
    store,
    config,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/websocket`,
    dir,
    async close() {
      await app.close();
      if (!deps.store) await store.close();
      if (!deps.bus) await bus.close();
      if (!options.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A JSON request; `body` undefined sends none. */
export async function request<T = any>(
  server: { url: string },
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(server.url + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

let counter = 0;
/** A fresh, valid username. */
export function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${process.pid % 1000}_${counter}_${Math.floor(Math.random() * 1e6)}`.slice(
    0,
    32,
  );
}

export const PASSWORD = 'a perfectly fine passphrase';

export interface Account {
  id: string;
  username: string;
  token: string;
  refreshToken: string;
}

/** Registers and logs in a new user. */
export async function account(server: { url: string }, name = uniqueName()): Promise<Account> {
  const reg = await request(server, 'POST', '/register', {
    body: { username: name, password: PASSWORD },
  });
  if (reg.status !== 201)
    throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await request(server, 'POST', '/login', {
    body: { username: name, password: PASSWORD },
  });
  if (login.status !== 200)
    throw new Error(`login failed: ${login.status} ${JSON.stringify(login.body)}`);
  return {
    id: reg.body.id,
    username: name,
    token: login.body.token,
    refreshToken: login.body.refreshToken,
  };
}

/** Frames outside the stream, which arrive on their own schedule: kept apart in `signals`. */
const SIGNALS = new Set(['receipt', 'typing', 'presence']);

/**
 * A WebSocket client that records frames and lets a test wait for the next matching one.
 * Receipts, typing and presence frames go to `signals` (see `nextSignal`), so that a test of
 * messages does not see them arrive in between.
 */
export class Client {
  readonly frames: any[] = [];
  readonly signals: any[] = [];
  private waiters: Array<{ match: (f: any) => boolean; resolve: (f: any) => void }> = [];
  private signalWaiters: Array<{ match: (f: any) => boolean; resolve: (f: any) => void }> = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      const signal = SIGNALS.has(frame.type);
      (signal ? this.signals : this.frames).push(frame);
      const waiters = signal ? this.signalWaiters : this.waiters;
      const left = waiters.filter((w) => {
        if (!w.match(frame)) return true;
        w.resolve(frame);
        return false;
      });
      if (signal) this.signalWaiters = left;
      else this.waiters = left;
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  /** The first receipt, typing or presence frame (already received or next) that matches. */
  nextSignal(match: (f: any) => boolean = () => true, ms = 5000): Promise<any> {
    return take(this.signals, (w) => this.signalWaiters.push(w), match, ms);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or next) that matches; fails after `ms`. */
  next(match: (f: any) => boolean = () => true, ms = 5000): Promise<any> {
    return take(this.frames, (w) => this.waiters.push(w), match, ms);
  }

  close(): void {
    this.ws.close();
  }
}

/** Takes the first frame of `frames` matching, or waits (via `wait`) for one; fails after `ms`. */
function take(
  frames: any[],
  wait: (w: { match: (f: any) => boolean; resolve: (f: any) => void }) => void,
  match: (f: any) => boolean,
  ms: number,
): Promise<any> {
  const seen = frames.find(match);
  if (seen) {
    frames.splice(frames.indexOf(seen), 1);
    return Promise.resolve(seen);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(frames)}`)),
      ms,
    );
    wait({
      match,
      resolve: (f) => {
        clearTimeout(timer);
        frames.splice(frames.indexOf(f), 1);
        resolve(f);
      },
    });
  });
}

/** Opens a WebSocket; resolves once open, rejects with the HTTP status of a refused handshake. */
export function connect(
  server: { wsUrl: string },
  options: { token?: string; query?: string; headers?: Record<string, string> } = {},
): Promise<Client> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const ws = new WebSocket(server.wsUrl + (options.query ? `?${options.query}` : ''), { headers });
  const client = new Client(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      reject(
        Object.assign(new Error(`handshake refused: ${res.statusCode}`), {
          status: res.statusCode,
          headers: res.headers,
        }),
      );
      ws.terminate();
    });
    ws.once('error', reject);
  });
}
