// The SQLite Store on its own worker thread: commits (and their fsync) never block the event
// loop, so frames keep being read while a batch is written and join the next batch. Every write
// is forwarded to a SqliteStore in the worker (sqlite-worker.ts); reads use a second connection
// on the calling thread. The guarantees are SqliteStore's.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { WorkerCall, WorkerInit, WorkerReply } from './sqlite-worker.js';
import { UsernameTakenError, type NewMessage, type Store } from './store.js';
import { decodeResults, encodeBatch } from './append-codec.js';
import { openSqliteStore } from './sqlite-store.js';
import { SAFETY_NET_PAGES, startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';

export interface WorkerSqliteStoreOptions extends WorkerInit {
  now?: () => Date;
}

/** Store methods that only read: served by a connection on the calling thread. */
const READS = new Set<string>([
  'findUserByName',
  'findUserById',
  'searchUsers',
  'getSession',
  'listSessions',
  'history',
  'stream',
  'lastStreamId',
  'ping',
]);

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void };

/** Starts the worker, opens (and migrates) the database there, and resolves once it is ready. */
export async function openWorkerSqliteStore(options: WorkerSqliteStoreOptions): Promise<Store> {
  // Under tsx or vitest this module is TypeScript: the worker then registers tsx to load its entry.
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(`./sqlite-worker.${ts ? 'ts' : 'js'}`, import.meta.url);
  const workerData = {
    file: options.file,
    idempotencyWindowMs: options.idempotencyWindowMs,
    // The checkpointer below keeps the WAL short; the writer checkpoints only if it falls behind.
    autoCheckpointPages: SAFETY_NET_PAGES,
  } satisfies WorkerInit;
  const worker = ts
    ? new Worker(
        `import(${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href.replace(/\.cjs$/, '.mjs'))})
          .then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`,
        { eval: true, workerData, execArgv: [] },
      )
    : new Worker(entry, { workerData });
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`SQLite worker exited with ${code}`));
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.once('message', () => {
      worker.off('error', reject);
      worker.off('exit', onExit);
      resolve();
    });
  });
  // Reads run on this thread: WAL lets a reader see every committed write without waiting for
  // the writer, and a read then costs no round trip to the worker.
  const reader = await openSqliteStore({ ...options, migrate: false });
  return new WorkerSqliteStore(worker, startCheckpointer(options.file), reader, options).proxy;
}

class WorkerSqliteStore {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  readonly proxy: Store;

  constructor(
    private readonly worker: Worker,
    private readonly checkpointer: Checkpointer,
    reader: Store,
    options: WorkerSqliteStoreOptions,
  ) {
    const now = options.now ?? (() => new Date());
    worker.on('message', ([id, result, error]: WorkerReply) => {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (!error) return p.resolve(result);
      if (error.name === 'UsernameTakenError') return p.reject(new UsernameTakenError());
      p.reject(Object.assign(new Error(error.message), { name: error.name, code: error.code }));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => this.failAll(new Error(`SQLite worker exited with ${code}`)));
    const call = (method: string, args: unknown[]) =>
      new Promise((resolve, reject) => {
        const id = this.nextId++;
        this.pending.set(id, { resolve, reject });
        worker.postMessage([id, method, args, now().getTime()] satisfies WorkerCall);
      });
    this.proxy = new Proxy({ description: `sqlite:${options.file}` } as Store, {
      get: (target, key) => {
        if (key === 'description') return target.description;
        if (key === 'close') {
          return async () => {
            if (this.worker.threadId === -1) return;
            this.checkpointer.stop();
            await reader.close();
            await call('close', []);
            await this.worker.terminate();
          };
        }
        if (typeof key === 'string' && READS.has(key)) {
          const read = reader[key as keyof Store] as (...a: unknown[]) => Promise<unknown>;
          return (...args: unknown[]) => read.apply(reader, args);
        }
        if (key === 'appendMessages') {
          return async (batch: NewMessage[]) =>
            decodeResults(
              (await call(key, [encodeBatch(batch)])) as Array<string | number | null>,
              batch,
            );
        }
        if (typeof key !== 'string' || key === 'then') return undefined;
        return (...args: unknown[]) => call(key, args);
      },
    });
  }

  private failAll(error: unknown): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
