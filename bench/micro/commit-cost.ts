// What one durable commit costs, apart from the server around it (`npm run bench:commit`):
//   1. a bare better-sqlite3 loop of 4-row transactions, WAL with synchronous=FULL and NORMAL
//      (the difference is the fsync);
//   2. SqliteStore.appendMessages, serial, at 4 and 250 messages per batch (the open and closed
//      loops' typical batches): wall time per commit and CPU per message;
//   3. the same for PostgresStore when DATABASE_URL names a PostgreSQL server;
//   4. the disk's latency distribution (disk-floor.ts): p50 / p99 / max of a back-to-back fsynced
//      commit, and of an ideal group commit fed at 5,000 msg/s (the floor for the open loop).
// Bounded (a few thousand commits per line), one process, temporary files deleted at the end.
// Run it pinned (`taskset -c 0`) on a quiet machine; compare lines of one run, not runs.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { openPostgresStore } from '../../src/storage/postgres-store.js';
import type { NewMessage, Store, User } from '../../src/storage/store.js';
import { measureDiskFloor } from './disk-floor.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commit-cost-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `fn` n times; wall ms per call and CPU us per call. */
async function measure(
  n: number,
  fn: (i: number) => unknown,
): Promise<{ ms: number; cpuUs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { ms: wall / n, cpuUs: (cpu.user + cpu.system) / n };
}

function bareLoop(sync: 'FULL' | 'NORMAL'): Promise<{ ms: number; cpuUs: number }> {
  const db = new Database(path.join(dir, `bare-${sync}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync}`);
  db.exec(`CREATE TABLE m (id INTEGER PRIMARY KEY, a INT, b INT, c TEXT);
    CREATE INDEX ma ON m(a, id);
    CREATE TABLE ib (u INT, id INT, PRIMARY KEY (u, id)) WITHOUT ROWID`);
  const insert = db.prepare('INSERT INTO m (a, b, c) VALUES (?, ?, ?)');
  const inbox = db.prepare('INSERT INTO ib VALUES (?, ?), (?, ?)');
  const tx = db.transaction((k: number) => {
    for (let i = 0; i < 4; i++) {
      const a = (k * 4 + i) % 50;
      const id = insert.run(a, a + 50, 'x'.repeat(100)).lastInsertRowid;
      inbox.run(a, id, a + 50, id);
    }
  });
  for (let k = 0; k < 300; k++) tx.immediate(k);
  return measure(2000, (k) => tx.immediate(k)).finally(() => db.close());
}

async function storeLines(name: string, store: Store): Promise<void> {
  const users: User[] = [];
  for (let i = 0; i < 100; i++) users.push(await store.createUser(`u${i}`, 'hash'));
  let n = 0;
  const batch = (size: number): NewMessage[] =>
    Array.from({ length: size }, () => {
      const k = n++;
      return {
        senderId: users[k % 50]!.id,
        receiver: `u${50 + (k % 50)}`,
        content: 'x'.repeat(100),
        clientId: `c${k}`,
      };
    });
  for (const size of [4, 250]) {
    const commits = size === 4 ? 2000 : 200;
    for (let i = 0; i < 20; i++) await store.appendMessages(batch(size));
    const r = await measure(commits, () => store.appendMessages(batch(size)));
    console.log(
      `${name.padEnd(26)} batch ${String(size).padStart(3)}: ${r.ms.toFixed(3)} ms per commit, ${(r.cpuUs / size).toFixed(1)} us CPU per message (this process)`,
    );
  }
}

for (const sync of ['FULL', 'NORMAL'] as const) {
  const r = await bareLoop(sync);
  console.log(
    `bare 4-row txn, ${sync.padEnd(6)}     : ${(r.ms * 1000).toFixed(0)} us per commit, ${r.cpuUs.toFixed(0)} us CPU per commit`,
  );
}

const disk = measureDiskFloor({
  rate: 5000,
  warmupSec: 1,
  durationSec: 5,
  commitSec: 5,
  parent: dir,
});
console.log(
  `disk commit, back to back    : p50 ${disk.commit.p50} ms, p99 ${disk.commit.p99} ms, max ${disk.commit.max} ms`,
);
console.log(
  `disk floor at 5,000 msg/s    : p50 ${disk.floor.p50} ms, p99 ${disk.floor.p99} ms, max ${disk.floor.max} ms (ideal group commit, ${disk.floor.meanBatch} messages per commit)`,
);

const sqlite = await openSqliteStore({
  file: path.join(dir, 'store.db'),
  backgroundCheckpoints: true,
});
await storeLines('SqliteStore (in process)', sqlite);
await sqlite.close();

const url = process.env.DATABASE_URL;
if (url?.startsWith('postgres')) {
  const schema = `commit_cost_${randomBytes(4).toString('hex')}`;
  const store = await openPostgresStore({ url, schema });
  try {
    await storeLines('PostgresStore', store);
  } finally {
    await store.close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  }
} else {
  console.log(
    'PostgresStore: skipped (set DATABASE_URL=postgres://…, e.g. from scripts/services.sh)',
  );
}
