// The append lock across nodes (`npm run bench:append-lock`): what one PostgreSQL database can
// take when several nodes append at once, and how long each batch holds the lock that orders ids.
//
// Every node's MessageWriter has one append in flight at a time, so C nodes are C concurrent
// appenders: this opens C PostgresStore instances on one schema (each its own pool, as C
// processes would have) and runs one loop per store calling PostgresStore.appendMessages with
// batches of B direct messages (100 characters, a clientId each, between 200 users), for C in
// --nodes (default 1,2,4,8) and B in --batches (default 1,10,100), --seconds each (default 3).
//
// Where the lock's time goes is measured inside the transaction, in a copy of append_events made
// for this run only: the migrated function, read back with pg_get_functiondef, with two lines
// added: `clock_timestamp()` right after pg_advisory_xact_lock returns, and, as its last
// statement, one INSERT into an UNLOGGED table of (statement_timestamp(), that lock time,
// clock_timestamp(), the batch's first clientId). The client notes when each call returned
// (performance.timeOrigin + performance.now(): the same wall clock on one machine). Per batch:
//   wait   = locked - statement start     (queued behind other nodes' batches)
//   body   = body end - locked            (the function's work under the lock)
//   commit = returned - body end          (COMMIT: the WAL flush, then the lock's release, and
//                                          the reply reaching the client: an upper bound)
//   hold   = body + commit                (an upper bound on the time the lock is held)
//   handoff: with C >= 2, the gap between one batch taking the lock and the next one taking it,
//            counted only when the next was already waiting: the lock's real cost per batch
//            under contention, whatever the client's part.
// The ceiling is B / handoff (median) where batches queued for the lock, else B / hold (median):
// messages/s one lock can pass at that batch size. Each line
// also runs once with the unmodified function (plain), to show what the instrumentation costs.
//
// PostgreSQL: DATABASE_URL when set (a scratch schema `append_lock_bench` is dropped at the
// end), else a throw-away server from scripts/services.sh, pinned to core 0 (this process goes
// to core 1), stopped at the end. Prints a Markdown table and writes it to
// bench/results/append-lock-<timestamp>.md. Run it under the bench lock:
//   flock /tmp/bench.lock npm run bench:append-lock
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openPostgresStore, type PostgresStore } from '../../src/storage/postgres-store.js';
import type { NewMessage, User } from '../../src/storage/store.js';
import { startServices, stopServices } from '../lib/services.js';
import { counts, option } from '../lib/machine.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RESULTS = path.join(ROOT, 'bench', 'results');
const SCHEMA = 'append_lock_bench';
const USERS = 200;
const CONTENT = 'x'.repeat(100);

const NODES = counts(option('nodes', '1,2,4,8'));
const BATCHES = counts(option('batches', '1,10,100'));
const SECONDS = Math.min(20, Math.max(0.5, Number(option('seconds', '3'))));
if (Math.max(...NODES) > 16) throw new Error('--nodes: at most 16');

const nowMs = () => performance.timeOrigin + performance.now();
const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
const median = (v: number[]) =>
  pct(
    [...v].sort((a, b) => a - b),
    0.5,
  );
const fmt = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');

interface Call {
  clientId: string;
  sent: number;
  returned: number;
}
interface Logged {
  client_id: string;
  started: string;
  locked: string;
  body_done: string;
}

/** Epoch ms (fractional) of a timestamptz as text from PostgreSQL, e.g. `2026-11-28 10:00:00.123456+00`. */
function epochMs(text: string): number {
  const m = /^(.*?)(\.\d+)?([+-]\d\d(?::?\d\d)?)$/.exec(text);
  if (!m) throw new Error(`unexpected timestamp ${text}`);
  const whole = Date.parse(`${m[1]!.replace(' ', 'T')}${m[3]!.length === 3 ? `${m[3]}:00` : m[3]}`);
  return whole + (m[2] ? Number(m[2]) * 1000 : 0);
}

let services: ReturnType<typeof startServices> | undefined;
let url = process.env.DATABASE_URL ?? '';
if (!url) {
  services = startServices(ROOT, 0);
  url = services.databaseUrl;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  } catch {
    /* one core, or not allowed: unpinned */
  }
}
process.on('exit', () => stopServices());
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const admin = new pg.Client({ connectionString: url, options: `-c search_path=${SCHEMA}` });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
const stores: PostgresStore[] = [];
try {
  for (let i = 0; i < Math.max(...NODES); i++) {
    stores.push(await openPostgresStore({ url, schema: SCHEMA, poolSize: 2, migrate: i === 0 }));
  }
  const users: User[] = [];
  for (let i = 0; i < USERS; i++) users.push(await stores[0]!.createUser(`lock${i}`, 'not-a-hash'));
  await admin.query(`CREATE UNLOGGED TABLE bench_lock_log (client_id text, started timestamptz,
    locked timestamptz, body_done timestamptz)`);

  // The migrated function, and the same with the timestamps added.
  const plain = (
    await admin.query<{ def: string }>(
      `SELECT pg_get_functiondef('${SCHEMA}.append_events'::regproc) AS def`,
    )
  ).rows[0]!.def;
  const lockLine = 'PERFORM pg_advisory_xact_lock(lock_class, lock_key);';
  const body = /AS \$function\$([\s\S]*)\$function\$/.exec(plain);
  if (!body || !plain.includes(lockLine) || !/\bEND\s*$/.test(body[1]!))
    throw new Error('append_events does not have the expected shape: update append-lock.ts');
  const timed = plain.replace(
    body[1]!,
    body[1]!
      .replace('DECLARE', 'DECLARE\n      v_bench_locked timestamptz;')
      .replace(lockLine, `${lockLine}\n      v_bench_locked := clock_timestamp();`)
      .replace(
        /\bEND\s*$/,
        `INSERT INTO bench_lock_log VALUES (client_ids[1], statement_timestamp(), v_bench_locked,
        clock_timestamp());
    END
`,
      ),
  );

  let sequence = 0;
  const batchOf = (node: number, size: number): NewMessage[] =>
    Array.from({ length: size }, () => {
      const k = sequence++;
      const sender = users[k % USERS]!;
      const receiver = users[(k * 7 + 1) % USERS]!;
      return {
        senderId: sender.id,
        receiver: receiver.id === sender.id ? users[(k + 1) % USERS]!.username : receiver.username,
        content: CONTENT,
        clientId: `n${node}-${k}`,
      };
    });

  // Warm every store's caches (user names, direct conversations) and the functions' plans.
  for (const [i, store] of stores.entries()) {
    for (let k = 0; k < USERS; k += 50) await store.appendMessages(batchOf(i, 100));
  }

  /** C loops, one per store, for SECONDS: every call is one transaction (one commit). */
  async function run(nodes: number, size: number) {
    const calls: Call[] = [];
    const start = performance.now();
    const end = start + SECONDS * 1000;
    await Promise.all(
      stores.slice(0, nodes).map(async (store, node) => {
        while (performance.now() < end) {
          const batch = batchOf(node, size);
          const sent = nowMs();
          const results = await store.appendMessages(batch);
          if (results.some((r) => r.kind !== 'stored')) throw new Error('a message was not stored');
          calls.push({ clientId: batch[0]!.clientId!, sent, returned: nowMs() });
        }
      }),
    );
    return { calls, wall: (performance.now() - start) / 1000 };
  }

  const lines: string[] = [];
  const header =
    '| nodes | batch | commits/s (plain) | messages/s (plain) | commits/s (timed) | messages/s (timed) | call p50 / p99 ms | wait p50 / p99 ms | body p50 ms | commit p50 ms | hold p50 / p99 ms | handoff p50 ms | ceiling msg/s (batch / handoff p50, else hold p50) |';
  lines.push(
    header,
    `|${header
      .split('|')
      .slice(1, -1)
      .map(() => ' --- ')
      .join('|')}|`,
  );
  for (const size of BATCHES) {
    for (const nodes of NODES) {
      await admin.query(plain);
      const p = await run(nodes, size);
      await admin.query(timed);
      await admin.query('TRUNCATE bench_lock_log');
      const t = await run(nodes, size);
      const logged = (
        await admin.query<Logged>(
          `SELECT client_id, started::text, locked::text, body_done::text FROM bench_lock_log`,
        )
      ).rows;
      const byClient = new Map(logged.map((r) => [r.client_id, r]));
      const rows = t.calls.flatMap((c) => {
        const r = byClient.get(c.clientId);
        if (!r) return [];
        const started = epochMs(r.started);
        const locked = epochMs(r.locked);
        const bodyDone = epochMs(r.body_done);
        return [{ ...c, started, locked, bodyDone }];
      });
      const sorted = (f: (r: (typeof rows)[number]) => number) => rows.map(f).sort((a, b) => a - b);
      const call = sorted((r) => r.returned - r.sent);
      const wait = sorted((r) => r.locked - r.started);
      const bodyMs = sorted((r) => r.bodyDone - r.locked);
      const commit = sorted((r) => r.returned - r.bodyDone);
      const hold = sorted((r) => r.returned - r.locked);
      const byLock = [...rows].sort((a, b) => a.locked - b.locked);
      const handoffs: number[] = [];
      for (let i = 1; i < byLock.length; i++) {
        if (byLock[i]!.started <= byLock[i - 1]!.bodyDone)
          handoffs.push(byLock[i]!.locked - byLock[i - 1]!.locked);
      }
      const holdP50 = pct(hold, 0.5);
      lines.push(
        `| ${nodes} | ${size} | ${int(p.calls.length / p.wall)} | ${int((p.calls.length * size) / p.wall)} | ${int(t.calls.length / t.wall)} | ${int((t.calls.length * size) / t.wall)} | ${fmt(pct(call, 0.5))} / ${fmt(pct(call, 0.99))} | ${fmt(pct(wait, 0.5))} / ${fmt(pct(wait, 0.99))} | ${fmt(pct(bodyMs, 0.5))} | ${fmt(pct(commit, 0.5))} | ${fmt(holdP50)} / ${fmt(pct(hold, 0.99))} | ${handoffs.length > 0 ? fmt(median(handoffs)) : '-'} | ${int((size * 1000) / (handoffs.length > 0 ? median(handoffs) : holdP50))} |`,
      );
      console.error(lines.at(-1));
    }
  }
  await admin.query(plain);

  const machine = `${fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? '?'}, Node ${process.version}`;
  const md = [
    `# Append lock: ${new Date().toISOString()}`,
    '',
    `${machine}; PostgreSQL ${(await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version}` +
      `${services ? ' (throw-away, pinned to core 0; this process on core 1)' : ' (DATABASE_URL)'};` +
      ` ${SECONDS} s per line and variant; batches of direct messages of 100 characters.`,
    '',
    ...lines,
    '',
  ].join('\n');
  fs.mkdirSync(RESULTS, { recursive: true });
  const out = path.join(
    RESULTS,
    `append-lock-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.md`,
  );
  fs.writeFileSync(out, md);
  console.log(md);
  console.log(`written to ${path.relative(ROOT, out)}`);
} finally {
  for (const store of stores) await store.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => {});
  await admin.end();
  stopServices();
}
