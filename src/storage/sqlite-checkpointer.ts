// WAL checkpoints on a thread of their own. Without it, SQLite runs a 4-5 ms checkpoint inside
// every commit that finds the WAL over `wal_autocheckpoint` pages (every ~40th commit under load:
// the open-loop benchmark's latency tail). A second connection on a low-priority thread runs
// passive checkpoints instead, which never block the writer; the writer's own automatic
// checkpoint stays as a safety net at SAFETY_NET_PAGES.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

/**
 * How often the checkpointer copies committed WAL pages into the database file. Every commit
 * rewrites the same hot pages (the newest leaf of each index), so a longer interval copies each
 * once instead of every time, with one fsync of the database file per interval: at 250 ms rather
 * than 20 ms the pinned benchmark used 57-62% instead of 65-73% of the core at 5,000 msg/s.
 */
const CHECKPOINT_INTERVAL_MS = 250;

/** `wal_autocheckpoint` for a writer whose WAL a checkpointer keeps short. */
export const SAFETY_NET_PAGES = 4000;

export interface Checkpointer {
  /** Stops the timer and closes the checkpointer's connection (the thread then exits). */
  stop(): void;
}

export function startCheckpointer(file: string): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const source = `
    const { workerData, parentPort } = require('node:worker_threads');
    const Database = require(workerData.driver);
    // Linux keeps a nice value per thread: only this thread yields to the others.
    try { require('node:os').setPriority(19); } catch {}
    const db = new Database(workerData.file);
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = FULL');
    const timer = setInterval(() => {
      try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
    }, ${CHECKPOINT_INTERVAL_MS});
    parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });`;
  const worker = new Worker(source, { eval: true, workerData: { driver, file }, execArgv: [] });
  worker.unref();
  return { stop: () => worker.postMessage('close') };
}
