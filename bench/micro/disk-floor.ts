// The disk's own latency, measured without the server, for the figures the server's latency is
// compared with (`npm run bench:commit` prints it; the full bench runs it beside chat's open
// loop, on the same disk and pinned to the server's core):
//   1. commit: a bare better-sqlite3 loop of 4-row transactions (WAL, synchronous=FULL), back to
//      back: p50 / p99 / max of one fsynced commit;
//   2. floor: the same transactions fed by an open loop at R messages/s. Each commit takes every
//      message whose scheduled time has come (an ideal group commit with no parsing, no network
//      and no other work), and a message's latency runs from its scheduled time to the end of
//      the commit that made it durable. No durable server on this disk can beat this figure;
//      a stall of the disk delays every message scheduled during it, which a per-commit p99
//      counts once.
// Usage: tsx bench/micro/disk-floor.ts [--rate 5000] [--warmup 2] [--duration 10] [--json]
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { histogram, recordMs, summarize, type Latency } from '../lib/stats.js';

export interface DiskFloor {
  /** One fsynced 4-row commit, back to back (the disk's own commit latency). */
  commit: Latency & { perSecond: number };
  /** Per-message latency of an ideal group commit at `rate` messages/s. */
  floor: Latency & { rate: number; commits: number; meanBatch: number };
  dir: string;
}

interface Options {
  rate: number;
  warmupSec: number;
  durationSec: number;
  /** Seconds of the back-to-back commit loop. */
  commitSec: number;
  /** Where the database goes (the disk under test); a temporary directory is made inside. */
  parent: string;
}

function open(dir: string): { commit: (rows: number, first: number) => void; close: () => void } {
  const db = new Database(path.join(dir, 'floor.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE m (id INTEGER PRIMARY KEY, a INT, b INT, c TEXT);
    CREATE INDEX ma ON m(a, id);
    CREATE TABLE ib (u INT, id INT, PRIMARY KEY (u, id)) WITHOUT ROWID`);
  const insert = db.prepare('INSERT INTO m (a, b, c) VALUES (?, ?, ?)');
  const inbox = db.prepare('INSERT INTO ib VALUES (?, ?), (?, ?)');
  const content = 'x'.repeat(100);
  const tx = db.transaction((rows: number, first: number) => {
    for (let i = 0; i < rows; i++) {
      const a = (first + i) % 50;
      const id = insert.run(a, a + 50, content).lastInsertRowid;
      inbox.run(a, id, a + 50, id);
    }
  });
  return { commit: (rows, first) => tx.immediate(rows, first), close: () => db.close() };
}

export function measureDiskFloor(o: Options): DiskFloor {
  const dir = fs.mkdtempSync(path.join(o.parent, 'disk-floor-'));
  try {
    const db = open(dir);
    // 1. Back to back.
    const h = histogram();
    let k = 0;
    for (let i = 0; i < 200; i++) db.commit(4, k++);
    const t0 = performance.now();
    while (performance.now() - t0 < o.commitSec * 1000) {
      const s = performance.now();
      db.commit(4, k++);
      recordMs(h, performance.now() - s);
    }
    const commit = { ...summarize(h), perSecond: Math.round(h.totalCount / o.commitSec) };

    // 2. Open loop: message i is scheduled at start + i / rate.
    const f = histogram();
    const start = performance.now();
    const measureFrom = o.warmupSec * 1000;
    const end = (o.warmupSec + o.durationSec) * 1000;
    const interval = 1000 / o.rate;
    let next = 0; // next message not yet committed
    let commits = 0;
    let committed = 0;
    for (;;) {
      const now = performance.now() - start;
      if (now >= end) break;
      const due = Math.min(Math.floor(now / interval) + 1, Math.ceil(end / interval));
      if (due <= next) {
        // Nothing scheduled yet: wait for the next message (a short busy wait: a timer would
        // add its own lateness to the floor).
        continue;
      }
      db.commit(due - next, k);
      k += due - next;
      const done = performance.now() - start;
      for (let i = next; i < due; i++) {
        const scheduled = i * interval;
        if (scheduled >= measureFrom) recordMs(f, done - scheduled);
      }
      if (next * interval >= measureFrom) {
        commits++;
        committed += due - next;
      }
      next = due;
    }
    db.close();
    return {
      commit,
      floor: {
        ...summarize(f),
        rate: o.rate,
        commits,
        meanBatch: commits ? Math.round((committed / commits) * 10) / 10 : 0,
      },
      dir: o.parent,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]));
if (isMain) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const result = measureDiskFloor({
    rate: arg('rate', 5000),
    warmupSec: arg('warmup', 2),
    durationSec: arg('duration', 10),
    commitSec: arg('commit', 5),
    parent: process.env.BENCH_DISK_DIR ?? os.tmpdir(),
  });
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
  else {
    const c = result.commit;
    const fl = result.floor;
    console.log(
      `disk commit (bare 4-row, FULL, back to back): p50 ${c.p50} ms, p99 ${c.p99} ms, max ${c.max} ms (${c.perSecond} commits/s)`,
    );
    console.log(
      `disk floor (ideal group commit, ${fl.rate} msg/s open loop): p50 ${fl.p50} ms, p99 ${fl.p99} ms, max ${fl.max} ms (${fl.commits} commits, ${fl.meanBatch} messages each)`,
    );
  }
}
