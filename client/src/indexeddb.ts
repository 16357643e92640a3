// The outbox and the sync cursor in IndexedDB, so that messages written offline survive a page
// reload and go out when the connection is back. Typed structurally (the few members used), so
// the library needs no DOM types and tests can pass an implementation such as fake-indexeddb.
import { runtimeGlobal } from './runtime.js';
import { byQueueOrder, type ClientStorage, type OutboxEntry } from './storage.js';

interface RequestLike<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface OpenRequestLike extends RequestLike<DatabaseLike> {
  onupgradeneeded: (() => void) | null;
}
interface FactoryLike {
  open(name: string, version: number): OpenRequestLike;
}
interface IndexLike {
  getAll(query: unknown): RequestLike<unknown[]>;
  getAllKeys(query: unknown): RequestLike<unknown[]>;
}
interface ObjectStoreLike {
  put(value: unknown): RequestLike<unknown>;
  get(key: unknown): RequestLike<unknown>;
  delete(key: unknown): RequestLike<unknown>;
  index(name: string): IndexLike;
  createIndex(name: string, keyPath: string): IndexLike;
}
interface TransactionLike {
  objectStore(name: string): ObjectStoreLike;
  readonly error: unknown;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface DatabaseLike {
  readonly objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string, options: { keyPath: string | string[] }): ObjectStoreLike;
  transaction(stores: string[], mode: 'readonly' | 'readwrite'): TransactionLike;
  onversionchange: (() => void) | null;
  close(): void;
}

export interface IndexedDbStorageOptions {
  /** An IDBFactory; globalThis.indexedDB by default. */
  indexedDB?: object;
  /** The database's name (default "chat-client"). */
  name?: string;
}

const OUTBOX = 'outbox';
const CURSORS = 'cursors';

export function indexedDbStorage(options: IndexedDbStorageOptions = {}): ClientStorage {
  const factory = (options.indexedDB ?? runtimeGlobal<object>('indexedDB')) as
    FactoryLike | undefined;
  if (!factory) throw new TypeError('IndexedDB is not available in this runtime');
  const name = options.name ?? 'chat-client';
  let opening: Promise<DatabaseLike> | undefined;

  const database = (): Promise<DatabaseLike> =>
    (opening ??= new Promise<DatabaseLike>((resolve, reject) => {
      const req = factory.open(name, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains(OUTBOX))
          db.createObjectStore(OUTBOX, { keyPath: ['userId', 'clientId'] }).createIndex(
            'user',
            'userId',
          );
        if (!db.objectStoreNames.contains(CURSORS))
          db.createObjectStore(CURSORS, { keyPath: 'userId' });
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading the schema: let it, and reopen on the next call.
        db.onversionchange = () => {
          db.close();
          opening = undefined;
        };
        resolve(db);
      };
      req.onerror = () => {
        opening = undefined;
        reject(req.error);
      };
    }));

  /** Runs `work` in one transaction; resolves with what it returns once the transaction commits. */
  const transaction = async <T>(
    stores: string[],
    mode: 'readonly' | 'readwrite',
    work: (tx: TransactionLike) => () => T,
  ): Promise<T> => {
    const db = await database();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(stores, mode);
      const result = work(tx);
      tx.oncomplete = () => resolve(result());
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  };

  return {
    loadOutbox: (userId) =>
      transaction([OUTBOX], 'readonly', (tx) => {
        const req = tx.objectStore(OUTBOX).index('user').getAll(userId);
        return () => (req.result as OutboxEntry[]).sort(byQueueOrder);
      }),
    putOutbox: (entry) =>
      transaction([OUTBOX], 'readwrite', (tx) => {
        tx.objectStore(OUTBOX).put(entry);
        return () => undefined;
      }),
    deleteOutbox: (userId, clientId) =>
      transaction([OUTBOX], 'readwrite', (tx) => {
        tx.objectStore(OUTBOX).delete([userId, clientId]);
        return () => undefined;
      }),
    loadCursor: (userId) =>
      transaction([CURSORS], 'readonly', (tx) => {
        const req = tx.objectStore(CURSORS).get(userId);
        return () => (req.result as { cursor?: string } | undefined)?.cursor ?? null;
      }),
    saveCursor: (userId, cursor) =>
      transaction([CURSORS], 'readwrite', (tx) => {
        tx.objectStore(CURSORS).put({ userId, cursor });
        return () => undefined;
      }),
    clearUser: (userId) =>
      transaction([OUTBOX, CURSORS], 'readwrite', (tx) => {
        const outbox = tx.objectStore(OUTBOX);
        const keys = outbox.index('user').getAllKeys(userId);
        keys.onsuccess = () => {
          for (const key of keys.result) outbox.delete(key);
        };
        tx.objectStore(CURSORS).delete(userId);
        return () => undefined;
      }),
    close() {
      void opening?.then((db) => db.close());
      opening = undefined;
    },
  };
}
