// The SQLite Store: the embedded default. WAL with synchronous=FULL (a commit is fsynced before
// its promise resolves), every statement prepared once, Kysely's Migrator for versioned schema.
// better-sqlite3 is synchronous, so each method runs to completion without interleaving.
// Every write goes through `write`: a full disk or an I/O error becomes StorageUnavailableError
// (and /readyz says so until writes succeed again), and a commit into a database file that is no
// longer the one at its path (data directory deleted or replaced) is reported as failed, not
// acked.
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Migration } from 'kysely';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as initial from './migrations/sqlite/001_initial.js';
import { SAFETY_NET_PAGES, startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';
import {
  MESSAGE_COLUMNS,
  toMessage,
  toSession,
  toUser,
  toUserRecord,
  type SqliteColumns,
} from './rows.js';
import type * as Rows from './rows.js';
import {
  StorageUnavailableError,
  UsernameTakenError,
  type AppendResult,
  type NewMessage,
  type Page,
  type RotateResult,
  type Session,
  type Store,
  type User,
  type UserRecord,
} from './store.js';

const MIGRATIONS: Record<string, Migration> = { '001_initial': initial };

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for a throw-away database. */
  file: string;
  /**
   * WAL pages after which a commit also checkpoints (SQLite's default: 1000). The worker store
   * checkpoints from another thread and raises this to a safety net.
   */
  autoCheckpointPages?: number;
  /**
   * Run WAL checkpoints on a thread of their own (sqlite-checkpointer.ts) instead of inside
   * commits; `autoCheckpointPages` then defaults to the safety net. Default false.
   */
  backgroundCheckpoints?: boolean;
  /** Apply pending migrations (default true); a second connection to a migrated file skips it. */
  migrate?: boolean;
  /** How long a clientId stays reserved for its sender. */
  idempotencyWindowMs?: number;
  now?: () => Date;
  /**
   * SQLite's max_page_count on this connection: a write that would grow the database beyond it
   * fails as on a full disk (SQLITE_FULL). For fault tests; unset, only the disk limits it.
   */
  maxPageCount?: number;
  /** Where storage faults are reported when they start and end. */
  log?: StorageLog;
}

/** The part of a logger (pino's) that the store reports storage faults to. */
export interface StorageLog {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** SQLite result codes that mean the storage cannot take writes, as opposed to a bad write. */
const STORAGE_FAULT = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB)/;
const isStorageFault = (error: unknown): boolean =>
  STORAGE_FAULT.test(String((error as { code?: unknown } | undefined)?.code ?? ''));

/**
 * How often the database file at its path is compared with the open one besides every write
 * (a stat is about 3 us; a commit, with its fsync, some hundreds), and how often a ping may
 * probe whether failing writes work again.
 */
const FILE_CHECK_INTERVAL_MS = 1000;
const PROBE_INTERVAL_MS = 1000;

/** A file as the kernel knows it: the same path may later name another file. */
interface FileIdentity {
  path: string;
  dev: number;
  ino: number;
}

function identify(file: string): FileIdentity | undefined {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  return stat && { path: file, dev: stat.dev, ino: stat.ino };
}

type UserRow = Rows.UserRow<SqliteColumns>;
type SessionRow = Rows.SessionRow<SqliteColumns>;
type MessageRow = Rows.MessageRow<SqliteColumns>;

/** The unique key of the direct conversation between two users, whichever way round. */
const directKey = (a: number, b: number): string => (a < b ? `${a}:${b}` : `${b}:${a}`);

/** Opens (creating if needed) the database, applies pending migrations and prepares statements. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  if (options.file !== ':memory:')
    fs.mkdirSync(path.dirname(path.resolve(options.file)), { recursive: true });
  const db = new Database(options.file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const autoCheckpointPages =
    options.autoCheckpointPages ?? (options.backgroundCheckpoints ? SAFETY_NET_PAGES : 1000);
  db.pragma(`wal_autocheckpoint = ${autoCheckpointPages}`);
  if (options.maxPageCount) db.pragma(`max_page_count = ${options.maxPageCount}`);
  const kysely = new Kysely<unknown>({ dialect: new SqliteDialect({ database: db }) });
  const migrator = new Migrator({
    db: kysely,
    provider: { getMigrations: async () => MIGRATIONS },
  });
  const { error } =
    options.migrate === false ? { error: undefined } : await migrator.migrateToLatest();
  if (error) {
    db.close();
    throw error instanceof Error ? error : new Error(String(error));
  }
  const checkpointer =
    options.backgroundCheckpoints && options.file !== ':memory:'
      ? startCheckpointer(options.file)
      : undefined;
  // The files this connection has open: the database and its WAL (open since the first read).
  const files =
    options.file === ':memory:'
      ? []
      : [options.file, `${options.file}-wal`].flatMap((f) => identify(path.resolve(f)) ?? []);
  return new SqliteStore(db, options, checkpointer, files);
}

export class SqliteStore implements Store {
  readonly description: string;
  private readonly now: () => Date;
  private readonly windowMs: number;
  /** direct_key -> conversation id; conversations are never deleted, so this never goes stale. */
  private readonly directConversations = new Map<string, number>();
  private readonly usernames = new Map<number, string>();
  private readonly receivers = new Map<string, { id: number; username: string }>();
  /** Messages up to this id have had their expired idempotency keys released. */
  private releasedUpTo = 0;
  private readonly q;
  private readonly log: StorageLog | undefined;
  /** Set for good once the database file at its path is not the open one. */
  private lost: string | undefined;
  /** Since when, and why, writes fail (until an append or a probe succeeds). */
  private failing: { since: number; reason: string } | undefined;
  private lastProbe = 0;
  private readonly fileCheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database.Database,
    options: SqliteStoreOptions,
    private readonly checkpointer?: Checkpointer,
    private readonly files: FileIdentity[] = [],
  ) {
    this.description = `sqlite:${options.file}`;
    this.now = options.now ?? (() => new Date());
    this.windowMs = options.idempotencyWindowMs ?? 24 * 3600_000;
    this.log = options.log;
    if (files.length > 0) {
      // Between writes too, so that the log and /readyz say so while nobody writes.
      this.fileCheck = setInterval(() => {
        try {
          this.checkFiles();
        } catch {
          // reported by checkFiles
        }
      }, FILE_CHECK_INTERVAL_MS);
      this.fileCheck.unref();
    }
    // Named, prepared once: the SQL behind every query is here to read and EXPLAIN.
    this.q = {
      insertUser: db.prepare<[string, string, string, string]>(
        'INSERT INTO users (username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *',
      ),
      userByKey: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username_key = ?'),
      userById: db.prepare<[number], UserRow>('SELECT * FROM users WHERE id = ?'),
      searchUsers: db.prepare<[string, string, number], UserRow>(
        'SELECT * FROM users WHERE username_key >= ? AND username_key < ? ORDER BY username_key LIMIT ?',
      ),
      setPassword: db.prepare<[string, number]>('UPDATE users SET password_hash = ? WHERE id = ?'),
      insertSession: db.prepare<[string, number, string, string | null, string], SessionRow>(
        'INSERT INTO sessions (id, user_id, created_at, user_agent, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING *',
      ),
      insertRefresh: db.prepare<[string, string]>(
        'INSERT INTO refresh_tokens (token_hash, session_id) VALUES (?, ?)',
      ),
      refreshByHash: db.prepare<[string], { session_id: string; used_at: string | null }>(
        'SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = ?',
      ),
      spendRefresh: db.prepare<[string, string]>(
        'UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL',
      ),
      sessionById: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
      liveSessions: db.prepare<[number, string], SessionRow>(
        `SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
         ORDER BY created_at DESC, id`,
      ),
      touchSession: db.prepare<[string, string]>(
        'UPDATE sessions SET last_used_at = ? WHERE id = ?',
      ),
      extendSession: db.prepare<[string, string]>(
        'UPDATE sessions SET expires_at = ? WHERE id = ?',
      ),
      revokeSession: db.prepare<[string, string]>(
        'UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
      ),
      revokeOthers: db.prepare<[string, number, string], { id: string }>(
        'UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id',
      ),
      insertTicket: db.prepare<[string, string, string]>(
        'INSERT INTO ws_tickets (ticket_hash, session_id, expires_at) VALUES (?, ?, ?)',
      ),
      redeemTicket: db.prepare<[string], { session_id: string; expires_at: string }>(
        'DELETE FROM ws_tickets WHERE ticket_hash = ? RETURNING session_id, expires_at',
      ),
      directConversation: db.prepare<[string], { id: number }>(
        'SELECT id FROM conversations WHERE direct_key = ?',
      ),
      insertConversation: db.prepare<[string, string], { id: number }>(
        "INSERT INTO conversations (kind, direct_key, created_at) VALUES ('direct', ?, ?) RETURNING id",
      ),
      insertMember: db.prepare<[number, number, string]>(
        'INSERT OR IGNORE INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?)',
      ),
      // One statement stores a message unless its (sender, clientId) exists: then it changes
      // nothing. The id is the new rowid: RETURNING, which SQLite runs through a temporary table,
      // made the store about a quarter slower per message.
      insertMessage: db.prepare<[number, number, number, string, string, string | null]>(
        `INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING`,
      ),
      byClientId: db.prepare<[number, string], { id: number; created_at: string }>(
        'SELECT id, created_at FROM messages WHERE sender_id = ? AND client_id = ?',
      ),
      releaseClientId: db.prepare<[number]>('UPDATE messages SET client_id = NULL WHERE id = ?'),
      // Both streams in one statement; OR IGNORE makes a message to oneself one row.
      insertInbox: db.prepare<[number, number, number, number]>(
        'INSERT OR IGNORE INTO inbox (user_id, message_id) VALUES (?, ?), (?, ?)',
      ),
      messageById: db.prepare<[number], MessageRow>(`SELECT ${MESSAGE_COLUMNS} WHERE m.id = ?`),
      history: db.prepare<[number, number, number], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} WHERE m.conversation_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`,
      ),
      stream: db.prepare<[number, number, number], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} JOIN inbox i ON i.message_id = m.id
         WHERE i.user_id = ? AND i.message_id > ? ORDER BY i.message_id LIMIT ?`,
      ),
      lastStreamId: db.prepare<[number], { id: number }>(
        'SELECT message_id AS id FROM inbox WHERE user_id = ? ORDER BY message_id DESC LIMIT 1',
      ),
      pruneTickets: db.prepare<[string]>('DELETE FROM ws_tickets WHERE expires_at <= ?'),
      lastIdBefore: db.prepare<[number, string], { id: number | null }>(
        'SELECT max(id) AS id FROM messages WHERE id > ? AND created_at < ?',
      ),
      releaseClientIds: db.prepare<[number, number]>(
        'UPDATE messages SET client_id = NULL WHERE id > ? AND id <= ? AND client_id IS NOT NULL',
      ),
      ping: db.prepare('SELECT 1'),
    };
  }

  private iso(offsetMs = 0): string {
    return new Date(this.now().getTime() + offsetMs).toISOString();
  }

  /**
   * Runs a write. Refused once the database file is gone; a storage fault (full disk, I/O error)
   * becomes StorageUnavailableError and marks writes as failing; after it commits, the database
   * file must still be the one at its path, else the write is reported as failed (a commit into
   * an unlinked file is lost at the next start). `recovers`: its success ends a failing period.
   */
  private write<T>(work: () => T, recovers = false): T {
    if (this.lost) throw new StorageUnavailableError(this.lost);
    let result: T;
    try {
      result = work();
    } catch (error) {
      if (!isStorageFault(error)) throw error;
      const reason = `writes fail: ${(error as Error).message}`;
      if (!this.failing) {
        this.failing = { since: Date.now(), reason };
        this.log?.error(
          { err: error, code: (error as { code?: string }).code },
          'storage: writes fail; sends get internal_error and /readyz 503 until they succeed again',
        );
      }
      throw new StorageUnavailableError(reason, { cause: error });
    }
    this.checkFiles();
    if (recovers && this.failing) {
      this.log?.info(
        { failedForMs: Date.now() - this.failing.since },
        'storage: writes succeed again',
      );
      this.failing = undefined;
    }
    return result;
  }

  /** Throws (and, the first time, logs) when the database or its WAL is not the open file. */
  private checkFiles(): void {
    if (this.lost) throw new StorageUnavailableError(this.lost);
    for (const open of this.files) {
      const now = identify(open.path);
      if (now && now.dev === open.dev && now.ino === open.ino) continue;
      this.lost = `the database file ${open.path} was ${now ? 'replaced' : 'deleted'} under the running server`;
      this.log?.error(
        { path: open.path },
        `storage: ${this.lost}; writes are refused and nothing more is acked until the server is restarted with its data in place`,
      );
      throw new StorageUnavailableError(this.lost);
    }
  }

  /**
   * Whether writes work again: a transaction that needs new pages and a commit, and leaves the
   * database as it was. It changes the schema (every statement is prepared again once), so it
   * runs only while writes fail.
   */
  private probeWrites(): void {
    this.db
      .transaction(() => {
        this.db.exec('CREATE TABLE _write_probe (b BLOB)');
        this.db.exec('INSERT INTO _write_probe VALUES (zeroblob(16384))');
        this.db.exec('DROP TABLE _write_probe');
      })
      .immediate();
  }

  async createUser(username: string, passwordHash: string): Promise<User> {
    try {
      const row = this.write(() =>
        this.q.insertUser.get(username, username.toLowerCase(), passwordHash, this.iso()),
      ) as UserRow;
      return toUser(row);
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new UsernameTakenError();
      throw error;
    }
  }

  async findUserByName(username: string): Promise<UserRecord | undefined> {
    const row = this.q.userByKey.get(username.toLowerCase());
    return row && toUserRecord(row);
  }

  async findUserById(id: string): Promise<UserRecord | undefined> {
    const row = this.q.userById.get(Number(id));
    return row && toUserRecord(row);
  }

  async searchUsers(prefix: string, limit: number): Promise<User[]> {
    const low = prefix.toLowerCase();
    // Range scan on the unique index: [prefix, prefix + highest code point).
    const rows = this.q.searchUsers.all(low, low + '\u{10ffff}', limit);
    return rows.map(toUser);
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    this.write(() => this.q.setPassword.run(passwordHash, Number(userId)));
  }

  async createSession(input: {
    userId: string;
    userAgent: string | null;
    refreshTokenHash: string;
    expiresAt: Date;
  }): Promise<Session> {
    const id = randomBytes(16).toString('base64url');
    const transaction = this.db.transaction(() => {
      const session = this.q.insertSession.get(
        id,
        Number(input.userId),
        this.iso(),
        input.userAgent,
        input.expiresAt.toISOString(),
      ) as SessionRow;
      this.q.insertRefresh.run(input.refreshTokenHash, id);
      return session;
    });
    return toSession(this.write(() => transaction()));
  }

  async getSession(id: string): Promise<Session | undefined> {
    const row = this.q.sessionById.get(id);
    return row && toSession(row);
  }

  async listSessions(userId: string): Promise<Session[]> {
    return this.q.liveSessions.all(Number(userId), this.iso()).map(toSession);
  }

  async touchSession(id: string, at: Date): Promise<void> {
    this.write(() => this.q.touchSession.run(at.toISOString(), id));
  }

  async revokeSession(id: string): Promise<boolean> {
    return this.write(() => this.q.revokeSession.run(this.iso(), id)).changes > 0;
  }

  async revokeOtherSessions(userId: string, keepSessionId: string): Promise<string[]> {
    return this.write(() => this.q.revokeOthers.all(this.iso(), Number(userId), keepSessionId)).map(
      (r) => r.id,
    );
  }

  async rotateRefreshToken(
    oldHash: string,
    newHash: string,
    newExpiresAt: Date,
  ): Promise<RotateResult> {
    const transaction = this.db.transaction((): RotateResult => {
      const token = this.q.refreshByHash.get(oldHash);
      if (!token) return { kind: 'invalid' };
      const session = this.q.sessionById.get(token.session_id);
      const now = this.iso();
      if (!session || session.revoked_at !== null || session.expires_at <= now)
        return { kind: 'invalid' };
      if (token.used_at !== null || this.q.spendRefresh.run(now, oldHash).changes === 0) {
        this.q.revokeSession.run(now, session.id);
        return { kind: 'reused', sessionId: session.id };
      }
      this.q.insertRefresh.run(newHash, session.id);
      this.q.extendSession.run(newExpiresAt.toISOString(), session.id);
      return {
        kind: 'rotated',
        session: toSession({ ...session, expires_at: newExpiresAt.toISOString() }),
      };
    });
    return this.write(() => transaction.immediate());
  }

  async createTicket(ticketHash: string, sessionId: string, expiresAt: Date): Promise<void> {
    this.write(() => this.q.insertTicket.run(ticketHash, sessionId, expiresAt.toISOString()));
  }

  async redeemTicket(ticketHash: string): Promise<string | undefined> {
    const row = this.write(() => this.q.redeemTicket.get(ticketHash));
    return row && row.expires_at > this.iso() ? row.session_id : undefined;
  }

  async appendMessages(batch: NewMessage[]): Promise<AppendResult[]> {
    const created = new Map<string, number>();
    // One timestamp for the batch: it commits at one instant.
    const now = this.iso();
    const results = this.write(
      () =>
        this.db.transaction(() => batch.map((m) => this.appendOne(m, now, created))).immediate(),
      true,
    );
    // Cache only what committed: a rolled-back batch must not leave a phantom conversation id.
    for (const [key, id] of created) this.directConversations.set(key, id);
    return results;
  }

  private appendOne(input: NewMessage, now: string, created: Map<string, number>): AppendResult {
    const receiver = this.userByName(input.receiver);
    if (!receiver) return { kind: 'unknown_receiver' };
    const senderId = Number(input.senderId);
    const clientId = input.clientId ?? null;
    const conversationId = this.directConversation(senderId, receiver.id, now, created);
    /** The new message's id, or undefined when its (sender, clientId) is taken. */
    const insert = (): number | undefined => {
      const { changes, lastInsertRowid } = this.q.insertMessage.run(
        conversationId,
        senderId,
        receiver.id,
        input.content,
        now,
        clientId,
      );
      return changes === 1 ? Number(lastInsertRowid) : undefined;
    };
    let id = insert();
    if (id === undefined && clientId !== null) {
      const seen = this.q.byClientId.get(senderId, clientId) as { id: number; created_at: string };
      if (Date.parse(seen.created_at) > this.now().getTime() - this.windowMs) {
        return {
          kind: 'duplicate',
          message: toMessage(this.q.messageById.get(seen.id) as MessageRow),
        };
      }
      // Older than the window but not pruned yet: the key is free again.
      this.q.releaseClientId.run(seen.id);
      id = insert();
    }
    if (id === undefined) throw new Error('message not stored');
    this.q.insertInbox.run(senderId, id, receiver.id, id);
    return {
      kind: 'stored',
      message: {
        id: String(id),
        sender: this.username(senderId),
        receiver: receiver.username,
        content: input.content,
        createdAt: now,
      },
      recipients:
        receiver.id === senderId ? [String(senderId)] : [String(senderId), String(receiver.id)],
    };
  }

  /** Receivers by name; users are never renamed or deleted, so a positive cache stays right. */
  private userByName(name: string): { id: number; username: string } | undefined {
    const key = name.toLowerCase();
    let user = this.receivers.get(key);
    if (user === undefined) {
      const row = this.q.userByKey.get(key);
      if (!row) return undefined;
      user = { id: row.id, username: row.username };
      if (this.receivers.size >= 100_000) this.receivers.clear();
      this.receivers.set(key, user);
    }
    return user;
  }

  /** Usernames never change, so a positive cache is always right. */
  private username(id: number): string {
    let name = this.usernames.get(id);
    if (name === undefined) {
      name = (this.q.userById.get(id) as UserRow).username;
      this.usernames.set(id, name);
    }
    return name;
  }

  private directConversation(
    a: number,
    b: number,
    now: string,
    created: Map<string, number>,
  ): number {
    const key = directKey(a, b);
    const known = this.directConversations.get(key) ?? created.get(key);
    if (known !== undefined) return known;
    let id = this.q.directConversation.get(key)?.id;
    if (id === undefined) {
      id = (this.q.insertConversation.get(key, now) as { id: number }).id;
      this.q.insertMember.run(id, a, now);
      this.q.insertMember.run(id, b, now);
    }
    created.set(key, id);
    return id;
  }

  async history(
    userId: string,
    peerId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page> {
    const conversation = this.q.directConversation.get(directKey(Number(userId), Number(peerId)));
    if (!conversation) return { messages: [], hasMore: false };
    const rows = this.q.history.all(
      conversation.id,
      before === undefined ? Number.MAX_SAFE_INTEGER : Number(before),
      limit + 1,
    );
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).reverse().map(toMessage), hasMore };
  }

  async stream(userId: string, after: string | undefined, limit: number): Promise<Page> {
    const rows = this.q.stream.all(
      Number(userId),
      after === undefined ? 0 : Number(after),
      limit + 1,
    );
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).map(toMessage), hasMore };
  }

  async lastStreamId(userId: string): Promise<string | undefined> {
    const row = this.q.lastStreamId.get(Number(userId));
    return row && String(row.id);
  }

  async prune(): Promise<void> {
    this.write(() => this.q.pruneTickets.run(this.iso()));
    const last = this.q.lastIdBefore.get(this.releasedUpTo, this.iso(-this.windowMs))?.id;
    if (last != null) {
      this.write(() => this.q.releaseClientIds.run(this.releasedUpTo, last));
      this.releasedUpTo = last;
    }
  }

  /**
   * Answers a query, and throws StorageUnavailableError while the database file is gone or
   * writes fail; while they fail, a probe write (at most once a second) finds when they work.
   */
  async ping(): Promise<void> {
    this.q.ping.get();
    this.checkFiles();
    if (!this.failing) return;
    if (Date.now() - this.lastProbe < PROBE_INTERVAL_MS)
      throw new StorageUnavailableError(this.failing.reason);
    this.lastProbe = Date.now();
    this.write(() => this.probeWrites(), true);
  }

  async close(): Promise<void> {
    clearInterval(this.fileCheck);
    this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }
}
