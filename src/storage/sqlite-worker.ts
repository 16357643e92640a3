// Worker-thread side of WorkerSqliteStore: owns the SqliteStore and runs each call it is sent.
// The caller's clock travels with every call, so time is the main thread's (and tests' fakes).
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { decodeBatch, encodeResults } from './append-codec.js';

export interface WorkerInit {
  file: string;
  idempotencyWindowMs?: number;
  autoCheckpointPages?: number;
  /** SqliteStoreOptions.maxPageCount (fault tests). */
  maxPageCount?: number;
  /** SqliteStoreOptions.cacheMib. */
  cacheMib?: number;
}

/** A storage log record the worker's store wrote, for the main thread's logger. */
export interface WorkerLog {
  log: 'error' | 'info';
  obj: Record<string, unknown>;
  msg: string;
}

/** A call: [id, method, args, caller's time in ms]. */
export type WorkerCall = [number, string, unknown[], number];
/** A reply: [id, result] or [id, undefined, error]. */
export type WorkerReply = [number, unknown, { name: string; message: string; code?: string }?];

const init = workerData as WorkerInit;
let callTime = Date.now();
const store = await openSqliteStore({
  file: init.file,
  idempotencyWindowMs: init.idempotencyWindowMs,
  autoCheckpointPages: init.autoCheckpointPages,
  maxPageCount: init.maxPageCount,
  cacheMib: init.cacheMib,
  now: () => new Date(callTime),
  log: {
    error: (obj, msg) => parentPort!.postMessage(logRecord('error', obj, msg)),
    info: (obj, msg) => parentPort!.postMessage(logRecord('info', obj, msg)),
  },
});

/** Errors do not survive the thread boundary as they are: their message and code do. */
function logRecord(level: WorkerLog['log'], obj: object, msg: string): WorkerLog {
  const plain: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    plain[key] =
      value instanceof Error
        ? { message: value.message, code: (value as { code?: unknown }).code }
        : value;
  }
  return { log: level, obj: plain, msg };
}
const port = parentPort!;

port.on('message', async ([id, method, args, at]: WorkerCall) => {
  callTime = at;
  try {
    const result =
      method === 'appendMessages'
        ? encodeResults(await store.appendMessages(decodeBatch(args[0] as string[])))
        : method === 'appendEvents'
          ? await store.appendMessages(args[0] as Parameters<Store['appendMessages']>[0])
          : await (store[method as keyof Store] as (...a: unknown[]) => Promise<unknown>).apply(
              store,
              args,
            );
    port.postMessage([id, result] satisfies WorkerReply);
  } catch (error) {
    const e = error as { name?: string; message?: string; code?: string };
    port.postMessage([
      id,
      undefined,
      { name: e.name ?? 'Error', message: e.message ?? String(error), code: e.code },
    ] satisfies WorkerReply);
  }
  if (method === 'close') port.close();
});
port.postMessage('ready');
