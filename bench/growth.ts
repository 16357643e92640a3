// npm run bench:growth: the chat server on a fresh SQLite database and on a copy of a seeded one
// (npm run bench:seed), alternating in one run, measured the same way: start-up (spawn until
// /readyz answers 200), send-to-ack and delivery latency at a steady open-loop rate, closed-loop
// throughput, a history page, the conversation list, a WebSocket sync of 10,000 missed events,
// server RSS, bytes on disk per message. Prints a Markdown table (fresh, seeded, seeded / fresh)
// and writes bench/results/growth-<timestamp>-<commit>.{md,json}.
//
// The users measured with come from the seed's record (FILE.json): the senders and receivers of
// the busiest direct conversations, the users with the largest streams for the sync and the
// conversation list. On the fresh database the same names are registered, the sync user gets
// 10,000 messages first, and the conversation-list user gets 21 conversations (one full page of
// 20 and more), so both sides do the same requests.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import WebSocket from 'ws';
import type { Identity } from './lib/drivers.js';
import { pool } from './lib/http.js';
import { PASSWORD, startPeer, removeDataDirs, type Peer } from './lib/peers.js';
import { hasTaskset, killAllChildren, pinSelf, rssKiB, settle, sleep } from './lib/proc.js';
import { pgDatabaseFor, readSeedMeta, seedPath } from './lib/seed-files.js';
import { databaseUrl, readPostgresSeedMeta, seedPostgres } from './lib/seed-postgres.js';
import { startServices, stopServices, type Services } from './lib/services.js';
import { DEFAULT_SHAPE, type SeedMeta } from './lib/seed-shape.js';
import { Passwords } from '../src/auth/passwords.js';
import { loadConfig } from '../src/config.js';
import { histogram, recordMs, summarize, type Latency } from './lib/stats.js';
import { openLoop } from './scenarios/open-loop.js';
import { throughput } from './scenarios/throughput.js';
import { git, ROOT, RESULTS, SERVER_CORE, GENERATOR_CORE, serverNodeArgs } from './lib/machine.js';

/**
 * Events replayed by the measured sync: 10,000, or fewer when no seeded user has that many (a
 * PostgreSQL seed of 1,000,000 messages over 100,000 users: the largest stream is ~6,600).
 */
let syncEvents = 10_000;
const LIST_CONVERSATIONS = 21;

interface Settings {
  seedFile: string;
  rounds: number;
  pairs: number;
  rate: number;
  openWarmup: number;
  openDuration: number;
  closedDuration: number;
  window: number;
  history: number;
  lists: number;
  syncs: number;
  build: boolean;
  pin: boolean;
  /** PostgreSQL + Redis instead of SQLite: throw-away services started by the run. */
  postgres: boolean;
  /** Or existing servers (the seed database is reused when it is there). */
  databaseUrl?: string;
  redisUrl?: string;
  pgSeed: string;
}

const HELP = `npm run bench:growth -- [flags]   (run it under flock /tmp/bench.lock)
  --seed-file FILE     seeded SQLite database (default: npm run bench:seed's default output,
                       $TMPDIR/chat-bench-seed/sqlite-10000000-100000.db); copied for every run
  --rounds R           fresh and seeded runs each, alternating (default 2)
  --pairs N            sender/receiver pairs (default 20)
  --rate R             open loop, messages/s in total (default 500)
  --open-warmup S / --open-duration S    default 2 / 10
  --closed-duration S  closed loop, measured seconds after a 1 s warm-up (default 5)
  --window W           closed loop, messages in flight per sender (default 10)
  --history N          GET /messages requests (default 300)
  --lists N            GET /conversations requests (default 200)
  --syncs N            WebSocket syncs of 10,000 events, fewer if no seeded user has that many (default 3)
  --postgres           PostgreSQL + Redis instead: starts throw-away servers (scripts/services.sh,
                       pinned with the server), seeds ${'$'}{--pg-seed} into them (1,000,000 messages,
                       npm run bench:seed's PostgreSQL default), runs, stops them
  --database-url URL --redis-url URL     or existing servers; the seed database is reused if there
  --pg-seed NAME       the seeded database (default chat_seed_1000000_100000); every run clones it
                       (CREATE DATABASE ... TEMPLATE), fresh runs get an empty database
  --no-build, --no-pin
  BENCH_SERVER_NODE_ARGS=...  extra node flags for the SQLite server, e.g. --cpu-prof --cpu-prof-dir=DIR`;

function parse(argv: string[]): Settings | 'help' {
  const s: Settings = {
    seedFile: seedPath({ messages: 10_000_000, users: 100_000, ...DEFAULT_SHAPE }),
    rounds: 2,
    pairs: 20,
    rate: 500,
    openWarmup: 2,
    openDuration: 10,
    closedDuration: 5,
    window: 10,
    history: 300,
    lists: 200,
    syncs: 3,
    build: true,
    pin: true,
    postgres: false,
    pgSeed: pgDatabaseFor({ messages: 1_000_000, users: 100_000, ...DEFAULT_SHAPE }),
  };
  const ints: Record<string, keyof Settings> = {
    '--rounds': 'rounds',
    '--pairs': 'pairs',
    '--rate': 'rate',
    '--open-warmup': 'openWarmup',
    '--open-duration': 'openDuration',
    '--closed-duration': 'closedDuration',
    '--window': 'window',
    '--history': 'history',
    '--lists': 'lists',
    '--syncs': 'syncs',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (flag === '--help' || flag === '-h') return 'help';
    if (flag === '--no-build') s.build = false;
    else if (flag === '--no-pin') s.pin = false;
    else if (flag === '--seed-file') s.seedFile = argv[++i] ?? '';
    else if (flag === '--postgres') s.postgres = true;
    else if (flag === '--database-url') s.databaseUrl = argv[++i] ?? '';
    else if (flag === '--redis-url') s.redisUrl = argv[++i] ?? '';
    else if (flag === '--pg-seed') s.pgSeed = argv[++i] ?? '';
    else if (flag in ints) {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
      (s as unknown as Record<string, number>)[ints[flag] as string] = n;
    } else throw new Error(`unknown flag ${flag} (--help lists them)`);
  }
  return s;
}

/** Who to measure with, from the seed's record: distinct users, heavy histories. */
interface Cast {
  senders: string[];
  receivers: string[];
  syncUser: string;
  listUser: string;
}

function cast(meta: SeedMeta, pairs: number): Cast {
  const largest = meta.topUsers[0];
  if (!largest || largest.stream < 1001) throw new Error('no seeded user has 1,000 events');
  syncEvents = Math.min(syncEvents, largest.stream - 1);
  const syncUser = largest.user;
  // The conversation list of a user with many conversations: every list request reads them all.
  const listUser = meta.mostConversations.find((u) => u.user !== syncUser)?.user as string;
  const used = new Set([syncUser, listUser]);
  const senders: string[] = [];
  const receivers: string[] = [];
  for (const c of meta.topDirect) {
    if (senders.length === pairs) break;
    if (used.has(c.a) || used.has(c.b)) continue;
    used.add(c.a);
    used.add(c.b);
    senders.push(c.a);
    receivers.push(c.b);
  }
  if (senders.length < pairs) throw new Error(`only ${senders.length} disjoint busy pairs`);
  return { senders, receivers, syncUser, listUser };
}

interface RunResult {
  db: 'fresh' | 'seeded';
  round: number;
  startupMs: number;
  rssStartMiB: number;
  rssEndMiB: number;
  open: { ack: Latency; delivery: Latency; sentPerSec: number; lost: number; unacked: number };
  closed: { deliveredPerSec: number; ack: Latency; lost: number; unacked: number };
  history: Latency;
  list: Latency;
  listConversations: number;
  sync: { ms: number[]; events: number };
  bytesPerMessage: number;
  messages: number;
  fileBytes: number;
}

/** Time from opening `?after=` to `synced`, counting the replayed events. */
function syncOnce(
  baseUrl: string,
  token: string,
  after: number,
): Promise<{ ms: number; events: number }> {
  const url = `${baseUrl.replace('http', 'ws')}/websocket?after=${after}`;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let events = 0;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('sync: no synced frame within 60 s'));
    }, 60_000);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type?: string };
      if (frame.type === 'message' || frame.type === 'conversation') events += 1;
      else if (frame.type === 'synced') {
        const ms = performance.now() - start;
        clearTimeout(timer);
        ws.terminate();
        resolve({ ms, events });
      }
    });
    ws.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Sends `count` messages from `from` to each of `to` in turn over one connection, W in flight. */
async function sendMessages(
  peer: Peer,
  from: Identity,
  to: string[],
  count: number,
): Promise<void> {
  let acked = 0;
  let sent = 0;
  let failed: string | undefined;
  let wake: () => void = () => {};
  const conn = await peer.driver.connect(from, {
    ack: () => {
      acked += 1;
      wake();
    },
    message: () => {},
    error: (code) => {
      failed = code;
      wake();
    },
    close: () => {},
  });
  try {
    const deadline = performance.now() + 60_000;
    while (acked < count && !failed && performance.now() < deadline) {
      while (sent < count && sent - acked < 50) {
        const receiver = to[sent % to.length] as string;
        conn.send(receiver, `setup ${sent} `.padEnd(100, 'x'), `setup-${from.username}-${sent}`);
        sent += 1;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
    if (failed) throw new Error(`setup send: error ${failed}`);
    if (acked < count) throw new Error(`setup send: ${acked} of ${count} acked`);
  } finally {
    conn.close();
  }
}

async function timedGets(
  peer: Peer,
  token: string,
  url: string,
  count: number,
): Promise<{ latency: Latency; body: unknown }> {
  const h = histogram();
  let body: unknown;
  await pool(count, 4, async () => {
    const t = performance.now();
    const res = await peer.http!.request('GET', url, { token });
    recordMs(h, performance.now() - t);
    if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
    body = res.body;
  });
  return { latency: summarize(h), body };
}

/** The id after which exactly syncEvents events of `user`'s stream follow (0 when fewer). */
function syncCursor(file: string, user: string): number {
  const db = new Database(file, { readonly: true });
  try {
    const row = db
      .prepare(
        `SELECT message_id AS id FROM inbox WHERE user_id = (SELECT id FROM users WHERE username_key = ?)
         ORDER BY message_id DESC LIMIT 1 OFFSET ?`,
      )
      .get(user, syncEvents) as { id: number } | undefined;
    return row?.id ?? 0;
  } finally {
    db.close();
  }
}

function diskFigures(dir: string): { bytes: number; messages: number } {
  const file = path.join(dir, 'chat.db');
  const bytes = [file, `${file}-wal`].reduce(
    (sum, f) => sum + (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0),
    0,
  );
  const db = new Database(file, { readonly: true });
  try {
    const { n } = db.prepare("SELECT count(*) AS n FROM messages WHERE kind = 'message'").get() as {
      n: number;
    };
    return { bytes, messages: n };
  } finally {
    db.close();
  }
}

/** One run's database, made ready before the server starts. */
interface Prepared {
  start(): Promise<Peer>;
  /** The id after which exactly syncEvents events of the sync user's stream follow (0: all). */
  syncAfter: number;
  /** After the server stopped: bytes of the tables and indexes, messages stored. */
  disk(): Promise<{ bytes: number; messages: number }>;
  cleanup(): Promise<void>;
}

interface Backend {
  label: string;
  prepare(db: 'fresh' | 'seeded', syncUser: string): Promise<Prepared>;
  close(): Promise<void>;
}

/** SQLite: a temporary DATA_DIR, empty or holding a copy of the seed file. */
function sqliteBackend(s: Settings, core: number | undefined): Backend {
  return {
    label: 'SQLite',
    async prepare(db, syncUser) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `chat-growth-${db}-`));
      let syncAfter = 0;
      if (db === 'seeded') {
        const t = performance.now();
        fs.copyFileSync(s.seedFile, path.join(dir, 'chat.db'));
        // Written out before the server starts: a copy still being flushed to disk would slow
        // its start-up and first commits (settle's sync gives up after 5 s).
        const fd = fs.openSync(path.join(dir, 'chat.db'), 'r+');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        syncAfter = syncCursor(path.join(dir, 'chat.db'), syncUser);
        for (const f of ['-wal', '-shm']) fs.rmSync(path.join(dir, `chat.db${f}`), { force: true });
        console.log(
          `growth: copied the seed and fsynced the copy in ${((performance.now() - t) / 1000).toFixed(1)} s`,
        );
      }
      return {
        syncAfter,
        start: () =>
          startPeer('chat', {
            root: ROOT,
            core,
            dataDir: dir,
            readyPollMs: 5,
            nodeArgs: serverNodeArgs(undefined),
          }),
        disk: async () => diskFigures(dir),
        cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
    close: async () => {},
  };
}

/**
 * PostgreSQL + Redis: every run gets a database of its own on the same server, empty or cloned
 * from the seed database (CREATE DATABASE ... TEMPLATE, a file copy), dropped after the run.
 */
function postgresBackend(services: Services, seed: string, core: number | undefined): Backend {
  const query = async <T extends pg.QueryResultRow>(
    database: string | undefined,
    text: string,
    values: unknown[] = [],
  ): Promise<T[]> => {
    const client = new pg.Client({
      connectionString: database
        ? databaseUrl(services.databaseUrl, database)
        : services.databaseUrl,
    });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  };
  let runs = 0;
  return {
    label: 'PostgreSQL + Redis',
    async prepare(db, syncUser) {
      const name = `growth_${process.pid}_${++runs}`;
      const t = performance.now();
      await query(
        undefined,
        `CREATE DATABASE ${name}${db === 'seeded' ? ` TEMPLATE ${seed}` : ''}`,
      );
      let syncAfter = 0;
      if (db === 'seeded') {
        console.log(`growth: cloned the seed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        const rows = await query<{ id: string }>(
          name,
          `SELECT message_id AS id FROM inbox WHERE user_id = (SELECT id FROM users WHERE username_key = $1)
           ORDER BY message_id DESC LIMIT 1 OFFSET $2`,
          [syncUser, syncEvents],
        );
        syncAfter = Number(rows[0]?.id ?? 0);
      }
      return {
        syncAfter,
        start: () =>
          startPeer('chat-postgres-redis', {
            root: ROOT,
            core,
            readyPollMs: 5,
            services: { ...services, databaseUrl: databaseUrl(services.databaseUrl, name) },
          }),
        async disk() {
          const [row] = await query<{ bytes: string; messages: string }>(
            name,
            `SELECT (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind = 'r') AS bytes,
                    (SELECT count(*) FROM messages WHERE kind = 'message') AS messages`,
          );
          return { bytes: Number(row?.bytes), messages: Number(row?.messages) };
        },
        cleanup: async () => void (await query(undefined, `DROP DATABASE IF EXISTS ${name}`)),
      };
    },
    close: async () => services.stop(),
  };
}

async function runOnce(
  db: 'fresh' | 'seeded',
  round: number,
  s: Settings,
  who: Cast,
  core: number | undefined,
  backend: Backend,
): Promise<RunResult> {
  const run = await backend.prepare(db, who.syncUser);
  try {
    const after = run.syncAfter;
    await settle(core);
    const peer = await run.start();
    try {
      const startupMs = peer.readyMs as number;
      const rssStartMiB = rssKiB(peer.child.pid) / 1024;
      const senders = await peer.identities(who.senders);
      const receivers = await peer.identities(who.receivers);
      const [syncId, listId] = await peer.identities([who.syncUser, who.listUser]);
      if (db === 'fresh') {
        // The same requests must find the same kind of data: a stream of syncEvents to replay,
        // a full page of conversations.
        const partners = Array.from({ length: LIST_CONVERSATIONS }, (_, i) => `gp${i}`);
        await pool(partners.length, 4, async (i) => {
          const res = await peer.http!.request('POST', '/register', {
            body: { username: partners[i], password: PASSWORD },
          });
          if (res.status !== 201) throw new Error(`register ${partners[i]}: HTTP ${res.status}`);
        });
        await sendMessages(peer, senders[0] as Identity, [who.syncUser], syncEvents);
        await sendMessages(peer, listId as Identity, partners, LIST_CONVERSATIONS);
      }
      await settle(core);
      const open = await openLoop(peer, senders, receivers, {
        pairs: s.pairs,
        rate: s.rate,
        size: 100,
        warmupSec: s.openWarmup,
        durationSec: s.openDuration,
        drainSec: 5,
      });
      await settle(core);
      const closed = await throughput(peer, senders, receivers, {
        pairs: s.pairs,
        window: s.window,
        size: 100,
        warmupSec: 1,
        durationSec: s.closedDuration,
        drainSec: 5,
      });
      await settle(core);
      const history = await timedGets(
        peer,
        (senders[0] as Identity).token as string,
        `/messages?with=${who.receivers[0]}&limit=50`,
        s.history,
      );
      const list = await timedGets(
        peer,
        (listId as Identity).token as string,
        '/conversations',
        s.lists,
      );
      const listed = (list.body as { conversations?: unknown[] }).conversations?.length ?? 0;
      const syncMs: number[] = [];
      let events = 0;
      for (let i = 0; i < s.syncs; i++) {
        const r = await syncOnce(peer.baseUrl, (syncId as Identity).token as string, after);
        syncMs.push(r.ms);
        events = r.events;
      }
      const rssEndMiB = rssKiB(peer.child.pid) / 1024;
      await peer.stop();
      const disk = await run.disk();
      return {
        db,
        round,
        startupMs,
        rssStartMiB,
        rssEndMiB,
        open: {
          ack: open.ack,
          delivery: open.delivery,
          sentPerSec: open.sentPerSec,
          lost: open.accounting.lost,
          unacked: open.accounting.unacked,
        },
        closed: {
          deliveredPerSec: closed.deliveredPerSec,
          ack: closed.ack,
          lost: closed.accounting.lost,
          unacked: closed.accounting.unacked,
        },
        history: history.latency,
        list: list.latency,
        listConversations: listed,
        sync: { ms: syncMs, events },
        bytesPerMessage: disk.bytes / disk.messages,
        messages: disk.messages,
        fileBytes: disk.bytes,
      };
    } finally {
      await peer.stop();
    }
  } finally {
    await run.cleanup();
  }
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
};

interface Row {
  figure: string;
  fresh: number;
  seeded: number;
  /** 'lower' when lower is better (ratio seeded / fresh), 'higher' when higher is. */
  better: 'lower' | 'higher';
  digits: number;
  note?: string;
}

function rows(results: RunResult[]): Row[] {
  const of = (db: 'fresh' | 'seeded', f: (r: RunResult) => number) =>
    median(results.filter((r) => r.db === db).map(f));
  const row = (
    figure: string,
    f: (r: RunResult) => number,
    better: Row['better'],
    digits: number,
    note?: string,
  ): Row => ({ figure, fresh: of('fresh', f), seeded: of('seeded', f), better, digits, note });
  return [
    row('start-up, spawn to /readyz 200 (ms)', (r) => r.startupMs, 'lower', 0, 'goal: < 2,000 ms'),
    row('open loop: send-to-ack p50 (ms)', (r) => r.open.ack.p50, 'lower', 2),
    row('open loop: send-to-ack p99 (ms)', (r) => r.open.ack.p99, 'lower', 2),
    row('open loop: delivery p99 (ms)', (r) => r.open.delivery.p99, 'lower', 2),
    row('closed loop: delivered msg/s', (r) => r.closed.deliveredPerSec, 'higher', 0),
    row('history page, 50 messages: p50 (ms)', (r) => r.history.p50, 'lower', 2),
    row('history page, 50 messages: p99 (ms)', (r) => r.history.p99, 'lower', 2),
    row('conversation list, 20: p50 (ms)', (r) => r.list.p50, 'lower', 2),
    row('conversation list, 20: p99 (ms)', (r) => r.list.p99, 'lower', 2),
    row(
      `sync of ${syncEvents.toLocaleString('en-US')} events over WebSocket (ms, median)`,
      (r) => median(r.sync.ms),
      'lower',
      0,
    ),
    row('server RSS after start (MiB)', (r) => r.rssStartMiB, 'lower', 0),
    row('server RSS at the end (MiB)', (r) => r.rssEndMiB, 'lower', 0),
    row('bytes on disk per message', (r) => r.bytesPerMessage, 'lower', 0),
  ];
}

const fmt = (n: number, digits: number) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a';

function markdown(
  results: RunResult[],
  s: Settings,
  meta: SeedMeta,
  header: Record<string, string>,
  who: Cast,
): string {
  const lines: string[] = [];
  lines.push(
    `# Growth on ${header.backend}: fresh vs seeded database (${header.when}, ${header.commit})`,
    '',
  );
  const listed = meta.mostConversations.find((u) => u.user === who.listUser);
  const synced = meta.topUsers.find((u) => u.user === who.syncUser);
  lines.push(
    `Machine: ${header.cpu}, ${os.cpus().length} cores, Node ${process.version}; server pinned: ${header.pinned}.`,
    `Seed: \`${header.seed}\`, ${meta.settings.messages.toLocaleString('en-US')} messages over ` +
      `${meta.settings.users.toLocaleString('en-US')} users (${meta.bytesPerMessage} bytes per message as seeded). ` +
      `${s.rounds} runs each, alternating; medians. Open loop ${s.rate} msg/s over ${s.pairs} pairs, ` +
      `${s.openDuration} s after ${s.openWarmup} s; closed loop W=${s.window}, ${s.closedDuration} s.`,
    `Users: ${s.pairs} pairs from the busiest direct conversations (the first: ` +
      `${meta.topDirect.find((c) => c.a === who.senders[0])?.messages.toLocaleString('en-US')} messages, its history is the one paged); ` +
      `sync by a user with ${synced?.stream.toLocaleString('en-US')} events; the conversation list of a user in ` +
      `${listed?.conversations} conversations (on the fresh database: ${syncEvents.toLocaleString('en-US')} messages sent to the sync user and ${LIST_CONVERSATIONS} conversations ` +
      `given to the list user before measuring).`,
    `Command: \`${header.command}\``,
    '',
  );
  lines.push('| figure | fresh | seeded | seeded / fresh | within 1.25x |');
  lines.push('| --- | ---: | ---: | ---: | :---: |');
  for (const r of rows(results)) {
    const ratio = r.seeded / r.fresh;
    const worse = r.better === 'lower' ? ratio : 1 / ratio;
    const ok = Number.isFinite(worse) ? (worse <= 1.25 ? 'yes' : '**no**') : 'n/a';
    lines.push(
      `| ${r.figure}${r.note ? ` (${r.note})` : ''} | ${fmt(r.fresh, r.digits)} | ${fmt(r.seeded, r.digits)} | ${fmt(ratio, 2)} | ${ok} |`,
    );
  }
  lines.push('', 'Per run:', '');
  lines.push(
    '| run | start-up ms | ack p99 ms | closed msg/s | history p99 ms | list p99 ms (conversations listed) | sync ms | RSS MiB | messages in db | bytes/msg | lost / unacked |',
  );
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    lines.push(
      `| ${r.round} ${r.db} | ${fmt(r.startupMs, 0)} | ${fmt(r.open.ack.p99, 2)} | ${fmt(r.closed.deliveredPerSec, 0)} | ` +
        `${fmt(r.history.p99, 2)} | ${fmt(r.list.p99, 2)} (${r.listConversations}) | ` +
        `${r.sync.ms.map((m) => fmt(m, 0)).join(', ')} (${r.sync.events} events) | ${fmt(r.rssEndMiB, 0)} | ` +
        `${r.messages.toLocaleString('en-US')} | ${fmt(r.bytesPerMessage, 0)} | ` +
        `${r.open.lost + r.closed.lost} / ${r.open.unacked + r.closed.unacked} |`,
    );
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const parsed = parse(argv);
  if (parsed === 'help') {
    console.log(HELP);
    return 0;
  }
  const s = parsed;
  const postgres = s.postgres || s.databaseUrl !== undefined;
  if (postgres && (s.databaseUrl === undefined) !== (s.redisUrl === undefined))
    throw new Error('--database-url and --redis-url go together');
  const watchdog = setTimeout(() => {
    console.error('growth: watchdog: the run exceeded 15 minutes and was stopped');
    killAllChildren();
    removeDataDirs();
    stopServices();
    process.exit(1);
  }, 15 * 60_000);
  watchdog.unref();
  const pinned = s.pin && os.cpus().length >= 2 && hasTaskset();
  if (pinned) pinSelf(GENERATOR_CORE);
  const core = pinned ? SERVER_CORE : undefined;
  let meta: SeedMeta | undefined;
  let backend: Backend;
  if (postgres) {
    const services: Services = s.databaseUrl
      ? {
          databaseUrl: s.databaseUrl,
          redisUrl: s.redisUrl as string,
          pids: () => [],
          stop: () => {},
        }
      : startServices(ROOT, core);
    backend = postgresBackend(services, s.pgSeed, core);
    meta = await readPostgresSeedMeta(services.databaseUrl, s.pgSeed);
    if (!meta && !s.databaseUrl) {
      // Throw-away servers hold no seed yet: seed them now (npm run bench:seed's defaults).
      const config = loadConfig({});
      const passwordHash = await new Passwords({
        memoryCostKiB: config.ARGON2_MEMORY_KIB,
        timeCost: config.ARGON2_TIME_COST,
      }).hash(PASSWORD);
      meta = await seedPostgres({
        url: services.databaseUrl,
        database: s.pgSeed,
        shape: { messages: 1_000_000, users: 100_000, ...DEFAULT_SHAPE },
        passwordHash,
        force: false,
        log: (line) => console.log(`seed: ${line}`),
      });
      console.log(`growth: seeded ${s.pgSeed} in ${meta.seconds} s`);
    }
    if (!meta) {
      await backend.close();
      console.error(`no seed database ${s.pgSeed}: run npm run bench:seed -- --database-url URL`);
      return 2;
    }
  } else {
    meta = readSeedMeta(s.seedFile);
    if (!meta || !fs.existsSync(s.seedFile)) {
      console.error(`no seed at ${s.seedFile}: run npm run bench:seed first (or pass --seed-file)`);
      return 2;
    }
    backend = sqliteBackend(s, core);
  }
  const who = cast(meta, s.pairs);
  if (s.build) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const started = new Date();
  const results: RunResult[] = [];
  for (let round = 1; round <= s.rounds; round++) {
    const order: Array<'fresh' | 'seeded'> =
      round % 2 === 1 ? ['fresh', 'seeded'] : ['seeded', 'fresh'];
    for (const db of order) {
      console.log(`growth: round ${round}, ${db}`);
      const r = await runOnce(db, round, s, who, core, backend);
      console.log(
        `growth: ${db}: start-up ${fmt(r.startupMs, 0)} ms, ack p99 ${fmt(r.open.ack.p99, 2)} ms, ` +
          `closed ${fmt(r.closed.deliveredPerSec, 0)} msg/s, history p99 ${fmt(r.history.p99, 2)} ms, ` +
          `list p99 ${fmt(r.list.p99, 2)} ms, sync ${r.sync.ms.map((m) => fmt(m, 0)).join('/')} ms`,
      );
      results.push(r);
      await sleep(200);
    }
  }
  await backend.close();
  clearTimeout(watchdog);
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--', 'src']) !== '';
  const cpu =
    /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ??
    'unknown CPU';
  const header = {
    when: started.toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: dirty ? `${commit}, uncommitted changes in src/` : commit,
    cpu,
    pinned: pinned ? 'core 0, generator core 1' : 'no',
    backend: backend.label,
    seed: postgres ? `database ${s.pgSeed}` : s.seedFile,
    command: ['npm run bench:growth', ...(argv.length ? ['--', ...argv] : [])].join(' '),
  };
  const md = markdown(results, s, meta, header, who);
  fs.mkdirSync(RESULTS, { recursive: true });
  const base = path.join(RESULTS, `growth-${header.when.replace(/:/g, '-')}-${commit}`);
  fs.writeFileSync(`${base}.md`, md);
  fs.writeFileSync(`${base}.json`, JSON.stringify({ header, settings: s, results }, null, 1));
  console.log(md);
  console.log(`written: ${path.relative(ROOT, base)}.md and .json`);
  const lost = results.some((r) => r.open.lost + r.closed.lost + r.open.unacked + r.closed.unacked);
  return lost ? 1 : 0;
}

process.on('SIGINT', () => {
  killAllChildren();
  removeDataDirs();
  stopServices();
  process.exit(130);
});
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    killAllChildren();
    removeDataDirs();
    stopServices();
    process.exit(1);
  },
);
