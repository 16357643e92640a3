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
  now: () => new Date(callTime),
});
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
