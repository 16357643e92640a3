// The peers under test and how the suite starts them: the chat server itself (built, rate limits
// raised) on SQLite in a temporary DATA_DIR and on PostgreSQL + Redis, a bare ws relay and a
// Socket.IO relay. Each runs as a child process on a free loopback port, pinned to core 0 when
// pinning is on (PostgreSQL and Redis too).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { socketIoDriver, wsDriver, type Driver, type Identity } from './drivers.js';
import { HttpClient, pool } from './http.js';
import type { PeerName } from './options.js';
import { freePort, startChild, stopChild, waitReady, type Child } from './proc.js';
import type { Services } from './services.js';

export const PASSWORD = 'bench passphrase 0123456789';

/** Temporary data directories of chat servers still to delete. */
const dataDirs = new Set<string>();

/** Deletes what is left of the chat servers' data directories (on exit, after a signal). */
export function removeDataDirs(): void {
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
  dataDirs.clear();
}

export interface Peer {
  name: PeerName;
  description: string;
  child: Child;
  baseUrl: string;
  driver: Driver;
  /** The processes whose CPU counts as the server's: the peer, and its database and bus if any. */
  serverPids: () => number[];
  /** The chat server's HTTP API (accounts scenario, metrics). */
  http?: HttpClient;
  /** Makes the users exist and returns what a connection needs (tokens for chat and Socket.IO). */
  identities(names: string[]): Promise<Identity[]>;
  /**
   * Makes a group of `owner` and `members` and returns its conversation id: `POST /conversations`
   * on the chat server (the owner is its admin), a fresh room name on the Socket.IO relay (whose
   * members join it from their connections). Absent on peers without groups (the ws relay).
   */
  createGroup?(owner: Identity, title: string, members: Identity[]): Promise<string>;
  /** Milliseconds from spawning the process until /readyz answered 200 (the chat peers). */
  readyMs?: number;
  /** Group-commit counters from /metrics (the chat peers only). */
  commitCounters?(): Promise<CommitCounters>;
  stop(): Promise<void>;
}

export interface CommitCounters {
  batches: number;
  messages: number;
  seconds: number;
  /** Commits that took at most 5, 10, 50, 100 ms (histogram buckets). */
  within5ms: number;
  within10ms: number;
  within50ms: number;
  within100ms: number;
  /**
   * The server's event-loop delay since the previous scrape (prom-client's monitorEventLoopDelay
   * histogram, reset at every /metrics read): the longest time no frame could be handled.
   */
  loopMaxMs: number;
  loopP99Ms: number;
}

export const DESCRIPTIONS: Record<PeerName, string> = {
  chat: 'this server: node dist/src/main.js, SQLite (WAL, synchronous=FULL) in a temp DATA_DIR, memory bus, acks after fsync',
  'chat-postgres-redis':
    'this server: node dist/src/main.js on a throw-away PostgreSQL 15 (synchronous_commit=on) and Redis bus, acks after commit; server CPU includes PostgreSQL and Redis, pinned to the same core',
  'ws-relay':
    'bare ws relay (bench/peers/ws-relay.ts): ?user=NAME, no auth/storage/validation, acks at once',
  'socketio-relay':
    'Socket.IO 4 relay (bench/peers/socketio-relay.ts): HS256 JWT in handshake auth (jose), rooms (one per user, one per group), ack callback, no storage',
};

export interface StartOptions {
  root: string;
  core: number | undefined;
  /** Extra node flags for the chat server (e.g. --cpu-prof), from BENCH_SERVER_NODE_ARGS. */
  nodeArgs?: string[];
  /** PostgreSQL and Redis, for chat-postgres-redis. */
  services?: Services;
  /**
   * The chat server's DATA_DIR (e.g. holding a seeded chat.db), kept at stop; by default a fresh
   * temporary directory, deleted at stop.
   */
  dataDir?: string;
  /** How often to poll /readyz while the chat server starts (default 100 ms). */
  readyPollMs?: number;
}

export async function startPeer(name: PeerName, o: StartOptions): Promise<Peer> {
  switch (name) {
    case 'chat':
      return startChat(name, {}, o);
    case 'chat-postgres-redis': {
      const services = o.services;
      if (!services) throw new Error('PostgreSQL and Redis are not running');
      return startChat(
        name,
        { DATABASE_URL: services.databaseUrl, REDIS_URL: services.redisUrl },
        o,
        services.pids,
      );
    }
    case 'ws-relay':
      return startRelay(name, 'bench/peers/ws-relay.ts', {}, o);
    case 'socketio-relay':
      return startRelay(name, 'bench/peers/socketio-relay.ts', {}, o);
  }
}

/** Environment for a child: ours, minus settings that would change what the chat server runs on. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('RATE_') || key === 'DATABASE_URL' || key === 'REDIS_URL') delete env[key];
  }
  return { ...env, ...extra };
}

async function startChat(
  name: 'chat' | 'chat-postgres-redis',
  storage: Record<string, string>,
  o: StartOptions,
  storagePids: () => number[] = () => [],
): Promise<Peer> {
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'chat-bench-'));
  if (!o.dataDir) dataDirs.add(dataDir);
  const port = await freePort();
  const spawnedAt = performance.now();
  const child = startChild(name, [process.execPath, ...(o.nodeArgs ?? []), 'dist/src/main.js'], {
    cwd: o.root,
    core: o.core,
    env: childEnv({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      JWT_SECRET: randomBytes(32).toString('base64url'),
      RATE_MESSAGES_PER_SEC: '1000000',
      RATE_MESSAGES_BURST: '1000000',
      RATE_REGISTER_PER_MIN: '1000000',
      RATE_LOGIN_PER_MIN: '1000000',
      RATE_LOGIN_SOURCE_FAILURES: '1000000',
      RATE_LOGIN_ACCOUNT_FAILURES: '10000000',
      RATE_API_PER_MIN: '10000000',
      RATE_WS_HANDSHAKES_PER_MIN: '10000000',
      ...storage,
    }),
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child);
    if (o.dataDir) return;
    fs.rmSync(dataDir, { recursive: true, force: true });
    dataDirs.delete(dataDir);
  };
  let readyMs: number;
  try {
    await waitReady(child, `${baseUrl}/readyz`, 20_000, o.readyPollMs);
    readyMs = performance.now() - spawnedAt;
  } catch (error) {
    await stop();
    throw error;
  }
  const http = new HttpClient(baseUrl, 16);
  return {
    name,
    description: DESCRIPTIONS[name],
    child,
    baseUrl,
    serverPids: () => [child.pid, ...storagePids()],
    driver: wsDriver(`ws://127.0.0.1:${port}/websocket`, 'bearer'),
    http,
    readyMs,
    async identities(names) {
      const out: Identity[] = new Array(names.length);
      await pool(names.length, 4, async (i) => {
        const username = names[i] as string;
        const reg = await http.request('POST', '/register', {
          body: { username, password: PASSWORD },
        });
        if (reg.status !== 201 && reg.status !== 409) {
          throw new Error(`register ${username}: HTTP ${reg.status} ${JSON.stringify(reg.body)}`);
        }
        const login = await http.request<{ token?: string }>('POST', '/login', {
          body: { username, password: PASSWORD },
        });
        if (login.status !== 200 || !login.body.token) {
          throw new Error(`login ${username}: HTTP ${login.status} ${JSON.stringify(login.body)}`);
        }
        out[i] = { username, token: login.body.token };
      });
      return out;
    },
    async createGroup(owner, title, members) {
      const res = await http.request<{ id?: string }>('POST', '/conversations', {
        token: owner.token,
        body: { title, members: members.map((m) => m.username) },
      });
      if (res.status !== 201 || typeof res.body?.id !== 'string') {
        throw new Error(`POST /conversations: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      }
      return res.body.id;
    },
    async commitCounters() {
      const res = await http.request<string>('GET', '/metrics');
      const text = typeof res.body === 'string' ? res.body : '';
      const read = (metric: string) =>
        Number(new RegExp(`^${metric} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      return {
        batches: read('chat_commit_batch_size_count'),
        messages: read('chat_commit_batch_size_sum'),
        seconds: read('chat_commit_duration_seconds_sum'),
        within5ms: read('chat_commit_duration_seconds_bucket\\{le="0.005"\\}'),
        within10ms: read('chat_commit_duration_seconds_bucket\\{le="0.01"\\}'),
        within50ms: read('chat_commit_duration_seconds_bucket\\{le="0.05"\\}'),
        within100ms: read('chat_commit_duration_seconds_bucket\\{le="0.1"\\}'),
        loopMaxMs: read('nodejs_eventloop_lag_max_seconds') * 1000,
        loopP99Ms: read('nodejs_eventloop_lag_p99_seconds') * 1000,
      };
    },
    async stop() {
      http.close();
      await stop();
    },
  };
}

async function startRelay(
  name: 'ws-relay' | 'socketio-relay',
  script: string,
  extra: Record<string, string>,
  o: StartOptions,
): Promise<Peer> {
  const port = await freePort();
  const secret = randomBytes(32).toString('base64url');
  const child = startChild(name, [process.execPath, '--import', 'tsx', script], {
    cwd: o.root,
    core: o.core,
    env: childEnv({ PORT: String(port), HOST: '127.0.0.1', JWT_SECRET: secret, ...extra }),
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitReady(child, `${baseUrl}/healthz`);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  const key = new TextEncoder().encode(secret);
  let groups = 0;
  return {
    name,
    description: DESCRIPTIONS[name],
    child,
    baseUrl,
    serverPids: () => [child.pid],
    driver:
      name === 'ws-relay'
        ? wsDriver(`ws://127.0.0.1:${port}/websocket`, 'query')
        : socketIoDriver(baseUrl),
    async identities(names) {
      if (name === 'ws-relay') return names.map((username) => ({ username }));
      return Promise.all(
        names.map(async (username) => ({
          username,
          token: await new SignJWT({})
            .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
            .setSubject(username)
            .setIssuedAt()
            .setExpirationTime('1h')
            .sign(key),
        })),
      );
    },
    ...(name === 'socketio-relay' ? { createGroup: () => Promise.resolve(`g${++groups}`) } : {}),
    stop: () => stopChild(child),
  };
}
