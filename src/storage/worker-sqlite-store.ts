// The SQLite Store on its own worker thread: commits (and their fsync) never block the event
// loop, so frames keep being read while a batch is written and join the next batch. Every write
// is forwarded to a SqliteStore in the worker (sqlite-worker.ts); reads use a second connection
// on the calling thread. The guarantees are SqliteStore's.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { WorkerCall, WorkerInit, WorkerLog, WorkerReply } from './sqlite-worker.js';
import {
  StorageUnavailableError,
  UsernameTakenError,
  type AppendResult,
  type ChangeResult,
  type Conversation,
  type ConversationChange,
  type NewEvent,
  type NewMessage,
  type Page,
  type StreamPage,
  type UserSettings,
  type Watermark,
  type RotateResult,
  type Session,
  type Store,
  type User,
  type UserRecord,
} from './store.js';
import { decodeResults, encodeBatch, isCompact } from './append-codec.js';
import { openSqliteStore, type StorageLog } from './sqlite-store.js';
import { SAFETY_NET_PAGES, startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';

export interface WorkerSqliteStoreOptions extends WorkerInit {
  now?: () => Date;
  /** Where the worker's storage faults are reported (SqliteStoreOptions.log). */
  log?: StorageLog;
}

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void };

/** Starts the worker, opens (and migrates) the database there, and resolves once it is ready. */
export async function openWorkerSqliteStore(options: WorkerSqliteStoreOptions): Promise<Store> {
  // Under tsx or vitest this module is TypeScript: the worker then registers tsx to load its entry.
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(`./sqlite-worker.${ts ? 'ts' : 'js'}`, import.meta.url);
  const workerData = {
    file: options.file,
    idempotencyWindowMs: options.idempotencyWindowMs,
    maxPageCount: options.maxPageCount,
    cacheMib: options.cacheMib,
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
    worker.once('message', (message: unknown) => {
      if (message !== 'ready') return reject(new Error('SQLite worker: unexpected first message'));
      worker.off('error', reject);
      worker.off('exit', onExit);
      resolve();
    });
  });
  // Reads run on this thread: WAL lets a reader see every committed write without waiting for
  // the writer, and a read then costs no round trip to the worker.
  const reader = await openSqliteStore({
    file: options.file,
    idempotencyWindowMs: options.idempotencyWindowMs,
    cacheMib: options.cacheMib,
    now: options.now,
    migrate: false,
  });
  return new WorkerSqliteStore(worker, startCheckpointer(options.file), reader, options);
}

/**
 * Reads go to `reader`, a connection on this thread; writes are forwarded to the worker. A class
 * that implements Store, so a method added to Store does not compile until it is routed here.
 */
class WorkerSqliteStore implements Store {
  readonly description: string;
  private readonly now: () => Date;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly worker: Worker,
    private readonly checkpointer: Checkpointer,
    private readonly reader: Store,
    options: WorkerSqliteStoreOptions,
  ) {
    this.description = `sqlite:${options.file}`;
    this.now = options.now ?? (() => new Date());
    worker.on('message', (reply: WorkerReply | WorkerLog) => {
      if (!Array.isArray(reply)) return void options.log?.[reply.log](reply.obj, reply.msg);
      const [id, result, error] = reply;
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (!error) return p.resolve(result);
      if (error.name === 'UsernameTakenError') return p.reject(new UsernameTakenError());
      if (error.name === 'StorageUnavailableError')
        return p.reject(new StorageUnavailableError(error.message));
      p.reject(Object.assign(new Error(error.message), { name: error.name, code: error.code }));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => this.failAll(new Error(`SQLite worker exited with ${code}`)));
  }

  /** Runs `method` on the worker's SqliteStore with this thread's clock; resolves with its reply. */
  private call(method: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage([id, method, args, this.now().getTime()] satisfies WorkerCall);
    });
  }

  /** `call`, typed by the Store method it forwards. */
  private forward<M extends Exclude<keyof Store, 'description'>>(
    method: M,
    ...args: Parameters<Store[M]>
  ): ReturnType<Store[M]> {
    return this.call(method, args) as ReturnType<Store[M]>;
  }

  // Reads: the connection on this thread.

  findUserByName(username: string): Promise<UserRecord | undefined> {
    return this.reader.findUserByName(username);
  }
  findUserById(id: string): Promise<UserRecord | undefined> {
    return this.reader.findUserById(id);
  }
  searchUsers(prefix: string, limit: number): Promise<User[]> {
    return this.reader.searchUsers(prefix, limit);
  }
  getSession(id: string): Promise<Session | undefined> {
    return this.reader.getSession(id);
  }
  listSessions(userId: string): Promise<Session[]> {
    return this.reader.listSessions(userId);
  }
  history(
    userId: string,
    peerId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page> {
    return this.reader.history(userId, peerId, before, limit);
  }
  stream(userId: string, after: string | undefined, limit: number): Promise<StreamPage> {
    return this.reader.stream(userId, after, limit);
  }
  conversationHistory(
    userId: string,
    conversationId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page | undefined> {
    return this.reader.conversationHistory(userId, conversationId, before, limit);
  }
  directConversationId(userId: string, peerId: string): Promise<string | undefined> {
    return this.reader.directConversationId(userId, peerId);
  }
  listConversations(
    userId: string,
    options: Parameters<Store['listConversations']>[1],
  ): ReturnType<Store['listConversations']> {
    return this.reader.listConversations(userId, options);
  }
  getConversation(
    userId: string,
    conversationId: string,
    memberPreview: number,
  ): Promise<Conversation | undefined> {
    return this.reader.getConversation(userId, conversationId, memberPreview);
  }
  membersOf(conversationId: string, userId: string): Promise<string[] | undefined> {
    return this.reader.membersOf(conversationId, userId);
  }
  contactsOf(userId: string): Promise<string[]> {
    return this.reader.contactsOf(userId);
  }
  listBlocks(userId: string): Promise<User[]> {
    return this.reader.listBlocks(userId);
  }
  blockedBetween(userId: string, others: string[]): Promise<Set<string>> {
    return this.reader.blockedBetween(userId, others);
  }
  getSettings(userId: string): Promise<UserSettings> {
    return this.reader.getSettings(userId);
  }
  getLastSeen(userId: string): Promise<string | null> {
    return this.reader.getLastSeen(userId);
  }
  lastStreamId(userId: string): Promise<string | undefined> {
    return this.reader.lastStreamId(userId);
  }
  /** The reader answers; the writer says whether writes work (SqliteStore.ping). */
  async ping(): Promise<void> {
    await this.reader.ping();
    await this.forward('ping');
  }

  // Writes: forwarded to the worker.

  createUser(username: string, passwordHash: string): Promise<User> {
    return this.forward('createUser', username, passwordHash);
  }
  setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    return this.forward('setPasswordHash', userId, passwordHash);
  }
  createSession(input: Parameters<Store['createSession']>[0]): Promise<Session> {
    return this.forward('createSession', input);
  }
  touchSession(id: string, at: Date): Promise<void> {
    return this.forward('touchSession', id, at);
  }
  revokeSession(id: string): Promise<boolean> {
    return this.forward('revokeSession', id);
  }
  revokeOtherSessions(userId: string, keepSessionId: string): Promise<string[]> {
    return this.forward('revokeOtherSessions', userId, keepSessionId);
  }
  rotateRefreshToken(oldHash: string, newHash: string, newExpiresAt: Date): Promise<RotateResult> {
    return this.forward('rotateRefreshToken', oldHash, newHash, newExpiresAt);
  }
  createTicket(ticketHash: string, sessionId: string, expiresAt: Date): Promise<void> {
    return this.forward('createTicket', ticketHash, sessionId, expiresAt);
  }
  redeemTicket(ticketHash: string): Promise<string | undefined> {
    return this.forward('redeemTicket', ticketHash);
  }
  /**
   * Direct messages cross threads in the compact form of append-codec.ts, not as objects; a batch
   * with anything else (group messages, edits, deletions) is cloned as it is.
   */
  async appendMessages(batch: Array<NewEvent | NewMessage>): Promise<AppendResult[]> {
    if (!isCompact(batch)) return this.call('appendEvents', [batch]) as Promise<AppendResult[]>;
    const flat = await this.call('appendMessages', [encodeBatch(batch)]);
    return decodeResults(flat as Array<string | number | null>, batch);
  }
  changeConversation(change: ConversationChange, maxMembers: number): Promise<ChangeResult> {
    return this.forward('changeConversation', change, maxMembers);
  }
  advanceWatermarks(kind: 'read' | 'delivered', marks: Watermark[]): Promise<Watermark[]> {
    return this.forward('advanceWatermarks', kind, marks);
  }
  block(blockerId: string, blockedId: string): Promise<void> {
    return this.forward('block', blockerId, blockedId);
  }
  unblock(blockerId: string, blockedId: string): Promise<void> {
    return this.forward('unblock', blockerId, blockedId);
  }
  setSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings> {
    return this.forward('setSettings', userId, settings);
  }
  setLastSeen(userId: string, at: Date): Promise<void> {
    return this.forward('setLastSeen', userId, at);
  }
  prune(): Promise<void> {
    return this.forward('prune');
  }

  async close(): Promise<void> {
    if (this.worker.threadId === -1) return;
    this.checkpointer.stop();
    await this.reader.close();
    await this.call('close', []);
    await this.worker.terminate();
  }

  private failAll(error: unknown): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
