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
import * as conversations from './migrations/sqlite/002_conversations.js';
import * as ticketExpiryMemberJoin from './migrations/sqlite/003_ticket_expiry_member_join_indexes.js';
import * as memberActivity from './migrations/sqlite/004_member_activity.js';
import { decide, type GroupState } from '../chat/membership.js';
import { chunks, lastIdBefore, RELEASE_CHUNK } from './expiry.js';
import { SAFETY_NET_PAGES, startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';
import {
  EVENT_COLUMNS,
  toEvent,
  toMessage,
  toSession,
  toUser,
  toUserRecord,
  type ConversationPayload,
  type SqliteColumns,
} from './rows.js';
import type * as Rows from './rows.js';
import {
  StorageUnavailableError,
  UsernameTakenError,
  type AppendResult,
  type ChangeResult,
  type Conversation,
  type ConversationChange,
  type Member,
  type Message,
  type NewEvent,
  type NewMessage,
  type Page,
  type Role,
  type RotateResult,
  type Session,
  type Store,
  type StreamEvent,
  type StreamPage,
  type User,
  type UserRecord,
  type UserSettings,
  type Watermark,
} from './store.js';

const MIGRATIONS: Record<string, Migration> = {
  '001_initial': initial,
  '002_conversations': conversations,
  '003_ticket_expiry_member_join_indexes': ticketExpiryMemberJoin,
  '004_member_activity': memberActivity,
};

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
  /**
   * SQLite's page cache for this connection, in MiB (SQLite's default: 2). On a large database a
   * user's events lie scattered over the file: a sync of 10,000 of them out of 10 million read
   * 66-113 ms warm with 2 MiB and 44-46 ms with 64 MiB (bench/README.md, cost as the data grows).
   * Pages are only held once read, so a small database costs no more.
   */
  cacheMib?: number;
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
type MessageRow = Rows.EventRow<SqliteColumns>;

/** A conversation as one member has it: what the conversation list is made from. */
interface MembershipRow {
  id: number;
  kind: 'direct' | 'group';
  title: string | null;
  created_at: string;
  role: Role;
  joined_after: number;
  read_up_to: number;
}

/**
 * The caller's memberships with each conversation's newest event they may see: last_activity_id,
 * written with every event that joins the member's stream (migration 004), so that the list reads
 * one page of memberships along members_by_activity however many the caller has.
 */
const MEMBERSHIPS = `SELECT c.id, c.kind, c.title, c.created_at, cm.role, cm.joined_after,
    cm.read_up_to, cm.last_activity_id AS last_id
  FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id`;

/**
 * The newest event of a batch per conversation (for all its members) and per member: written once
 * each when the batch ends, not once per message (ids grow, so the last one set is the newest).
 */
class ActivityMarks {
  readonly all = new Map<number, number>();
  readonly one = new Map<string, [conversationId: number, userId: number, id: number]>();
  members(conversationId: number, id: number): void {
    this.all.set(conversationId, id);
  }
  member(conversationId: number, userId: number, id: number): void {
    this.one.set(`${conversationId}:${userId}`, [conversationId, userId, id]);
  }
}

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
  if (options.cacheMib) db.pragma(`cache_size = -${Math.round(options.cacheMib * 1024)}`);
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

/** Small writes of one event-loop turn and the callers waiting for their commit (and result). */
interface BookkeepingBatch {
  updates: Array<() => unknown>;
  waiters: Array<[(result: unknown) => void, (error: unknown) => void]>;
}

export class SqliteStore implements Store {
  readonly description: string;
  private readonly now: () => Date;
  private readonly windowMs: number;
  /** direct_key -> conversation id; conversations are never deleted, so this never goes stale. */
  private readonly directConversations = new Map<string, number>();
  private readonly usernames = new Map<number, string>();
  private readonly receivers = new Map<string, { id: number; username: string }>();
  /** Conversation kind and members, for appends; dropped when a change commits or a batch fails. */
  private readonly conversationCache = new Map<
    number,
    { kind: 'direct' | 'group'; members: number[] }
  >();
  /** "blocker:blocked" pairs, loaded on first use and kept by block/unblock (the only writers). */
  private blockPairs: Set<string> | undefined;
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
  /**
   * Small writes of a handshake or a disconnect (a session's lastUsedAt, a user's last seen, a
   * WebSocket ticket issued or redeemed) waiting for their batch: the ones made in one event-loop
   * turn commit in one transaction, in the order they were made, so a reconnect storm pays one
   * fsync per turn, not one or two per handshake (and per user going offline).
   */
  private bookkeeping: BookkeepingBatch | undefined;

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
      insertGroup: db.prepare<[string | null, number, string], { id: number }>(
        "INSERT INTO conversations (kind, title, created_by, created_at) VALUES ('group', ?, ?, ?) RETURNING id",
      ),
      conversationById: db.prepare<
        [number],
        { id: number; kind: 'direct' | 'group'; title: string | null; created_at: string }
      >('SELECT id, kind, title, created_at FROM conversations WHERE id = ?'),
      renameGroup: db.prepare<[string, number]>('UPDATE conversations SET title = ? WHERE id = ?'),
      insertMember: db.prepare<[number, number, string]>(
        'INSERT OR IGNORE INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?)',
      ),
      insertGroupMember: db.prepare<[number, number, string, string, number]>(
        `INSERT INTO conversation_members (conversation_id, user_id, joined_at, role, joined_after)
         VALUES (?, ?, ?, ?, ?)`,
      ),
      deleteMember: db.prepare<[number, number]>(
        'DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?',
      ),
      setRole: db.prepare<[string, number, number]>(
        'UPDATE conversation_members SET role = ? WHERE conversation_id = ? AND user_id = ?',
      ),
      memberRoles: db.prepare<[number], { user_id: number; role: Role }>(
        'SELECT user_id, role FROM conversation_members WHERE conversation_id = ?',
      ),
      membership: db.prepare<
        [number, number],
        { role: Role; joined_after: number; read_up_to: number; delivered_up_to: number }
      >(
        `SELECT role, joined_after, read_up_to, delivered_up_to FROM conversation_members
         WHERE conversation_id = ? AND user_id = ?`,
      ),
      membersPreview: db.prepare<
        [number, number],
        {
          username: string;
          role: Role;
          read_up_to: number;
          delivered_up_to: number;
          user_id: number;
        }
      >(
        `SELECT u.username, cm.role, cm.read_up_to, cm.delivered_up_to, cm.user_id
         FROM conversation_members cm JOIN users u ON u.id = cm.user_id
         WHERE cm.conversation_id = ? ORDER BY cm.joined_after, cm.user_id LIMIT ?`,
      ),
      memberCount: db.prepare<[number], { n: number }>(
        'SELECT count(*) AS n FROM conversation_members WHERE conversation_id = ?',
      ),
      // A page of them, newest activity first. A direct conversation with nothing the caller may
      // see (only messages hidden by a block) has no activity and is not listed.
      userConversations: db.prepare<[number, number, number], MembershipRow & { last_id: number }>(
        `${MEMBERSHIPS} WHERE cm.user_id = ? AND cm.last_activity_id > 0 AND cm.last_activity_id < ?
         ORDER BY cm.last_activity_id DESC LIMIT ?`,
      ),
      // One of them (a conversation's state): by its key, not by reading all of the user's.
      userConversation: db.prepare<[number, number], MembershipRow & { last_id: number }>(
        `${MEMBERSHIPS} WHERE cm.user_id = ? AND cm.conversation_id = ?`,
      ),
      // An event joined these members' streams: it is their newest activity in the conversation
      // (forward only; written once per conversation and member at the end of a batch).
      touchActivityOne: db.prepare<[number, number, number, number]>(
        `UPDATE conversation_members SET last_activity_id = ?
         WHERE conversation_id = ? AND user_id = ? AND last_activity_id < ?`,
      ),
      touchActivityMembers: db.prepare<[number, number, number]>(
        `UPDATE conversation_members SET last_activity_id = ?
         WHERE conversation_id = ? AND last_activity_id < ?`,
      ),
      lastMessage: db.prepare<[number, number, number], MessageRow>(
        `SELECT ${EVENT_COLUMNS} WHERE m.conversation_id = ? AND m.kind = 'message' AND m.id > ?
           AND (m.hidden_from IS NULL OR m.hidden_from <> ?) ORDER BY m.id DESC LIMIT 1`,
      ),
      unreadCount: db.prepare<[number, number, number, number], { n: number }>(
        `SELECT count(*) AS n FROM messages m WHERE m.conversation_id = ? AND m.id > ?
           AND m.kind = 'message' AND m.deleted_at IS NULL AND m.sender_id <> ?
           AND (m.hidden_from IS NULL OR m.hidden_from <> ?)`,
      ),
      lastEventId: db.prepare<[number], { id: number | null }>(
        'SELECT max(id) AS id FROM messages WHERE conversation_id = ?',
      ),
      contacts: db.prepare<[number, number], { user_id: number }>(
        `SELECT DISTINCT other.user_id FROM conversation_members mine
         JOIN conversation_members other ON other.conversation_id = mine.conversation_id
         WHERE mine.user_id = ? AND other.user_id <> ?`,
      ),
      advanceRead: db.prepare<[number, number, number, number]>(
        `UPDATE conversation_members SET read_up_to = ?
         WHERE conversation_id = ? AND user_id = ? AND read_up_to < ?`,
      ),
      advanceDelivered: db.prepare<[number, number, number, number]>(
        `UPDATE conversation_members SET delivered_up_to = ?
         WHERE conversation_id = ? AND user_id = ? AND delivered_up_to < ?`,
      ),
      // One statement stores a message unless its (sender, clientId) exists: then it changes
      // nothing. The id is the new rowid: RETURNING, which SQLite runs through a temporary table,
      // made the store about a quarter slower per message.
      insertMessage: db.prepare<
        [number, number, number | null, string, string, string | null, number | null]
      >(
        `INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id, hidden_from)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING`,
      ),
      insertEvent: db.prepare<
        [
          number,
          number,
          string,
          string,
          string,
          string | null,
          number | null,
          number | null,
          string | null,
        ]
      >(
        `INSERT INTO messages (conversation_id, sender_id, kind, content, created_at, client_id, target_id, hidden_from, payload)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING`,
      ),
      target: db.prepare<
        [number],
        {
          id: number;
          conversation_id: number;
          sender_id: number;
          kind: string;
          deleted_at: string | null;
          hidden_from: number | null;
        }
      >(
        'SELECT id, conversation_id, sender_id, kind, deleted_at, hidden_from FROM messages WHERE id = ?',
      ),
      editMessage: db.prepare<[string, string, number]>(
        'UPDATE messages SET content = ?, edited_at = ? WHERE id = ?',
      ),
      deleteMessage: db.prepare<[string, number]>(
        "UPDATE messages SET content = '', deleted_at = ? WHERE id = ?",
      ),
      byClientId: db.prepare<[number, string], { id: number; created_at: string }>(
        'SELECT id, created_at FROM messages WHERE sender_id = ? AND client_id = ?',
      ),
      releaseClientId: db.prepare<[number]>('UPDATE messages SET client_id = NULL WHERE id = ?'),
      // Both streams in one statement; OR IGNORE makes a message to oneself one row.
      insertInbox: db.prepare<[number, number, number, number]>(
        'INSERT OR IGNORE INTO inbox (user_id, message_id) VALUES (?, ?), (?, ?)',
      ),
      insertInboxOne: db.prepare<[number, number]>(
        'INSERT OR IGNORE INTO inbox (user_id, message_id) VALUES (?, ?)',
      ),
      // Fan-out on write to every member, in the database: one statement whatever the size.
      insertInboxMembers: db.prepare<[number, number]>(
        `INSERT OR IGNORE INTO inbox (user_id, message_id)
         SELECT user_id, ? FROM conversation_members WHERE conversation_id = ?`,
      ),
      messageById: db.prepare<[number], MessageRow>(`SELECT ${EVENT_COLUMNS} WHERE m.id = ?`),
      history: db.prepare<[number, number, number, number, number], MessageRow>(
        `SELECT ${EVENT_COLUMNS} WHERE m.conversation_id = ? AND m.id < ? AND m.id > ?
           AND m.kind = 'message' AND (m.hidden_from IS NULL OR m.hidden_from <> ?)
         ORDER BY m.id DESC LIMIT ?`,
      ),
      stream: db.prepare<[number, number, number], MessageRow>(
        `SELECT ${EVENT_COLUMNS} JOIN inbox i ON i.message_id = m.id
         WHERE i.user_id = ? AND i.message_id > ? ORDER BY i.message_id LIMIT ?`,
      ),
      lastStreamId: db.prepare<[number], { id: number }>(
        'SELECT message_id AS id FROM inbox WHERE user_id = ? ORDER BY message_id DESC LIMIT 1',
      ),
      blocks: db.prepare<[], { blocker_id: number; blocked_id: number }>(
        'SELECT blocker_id, blocked_id FROM blocks',
      ),
      insertBlock: db.prepare<[number, number, string]>(
        'INSERT OR IGNORE INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)',
      ),
      deleteBlock: db.prepare<[number, number]>(
        'DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?',
      ),
      listBlocks: db.prepare<[number], UserRow>(
        `SELECT u.* FROM blocks b JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = ?
         ORDER BY b.created_at, u.id`,
      ),
      blockEither: db.prepare<[number, number, number, number], { n: number }>(
        `SELECT count(*) AS n FROM blocks WHERE (blocker_id = ? AND blocked_id = ?)
           OR (blocker_id = ? AND blocked_id = ?)`,
      ),
      settings: db.prepare<[number], { read_receipts: number; show_last_seen: number }>(
        'SELECT read_receipts, show_last_seen FROM users WHERE id = ?',
      ),
      setSettings: db.prepare<[number, number, number]>(
        'UPDATE users SET read_receipts = ?, show_last_seen = ? WHERE id = ?',
      ),
      setLastSeen: db.prepare<[string, number]>('UPDATE users SET last_seen_at = ? WHERE id = ?'),
      lastSeen: db.prepare<[number], { last_seen_at: string | null }>(
        'SELECT last_seen_at FROM users WHERE id = ?',
      ),
      pruneTickets: db.prepare<[string]>('DELETE FROM ws_tickets WHERE expires_at <= ?'),
      // The idempotency window's end, by primary-key seeks only (storage/expiry.ts).
      maxMessageId: db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM messages'),
      firstAtOrAfter: db.prepare<[number], { id: number; created_at: string }>(
        'SELECT id, created_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1',
      ),
      releaseClientIds: db.prepare<[number, number, string]>(
        `UPDATE messages SET client_id = NULL
         WHERE id > ? AND id <= ? AND client_id IS NOT NULL AND created_at < ?`,
      ),
      ping: db.prepare('SELECT 1'),
    };
  }

  /**
   * The SQL of every named prepared statement, as prepared: what the plan test
   * (test/storage/sqlite-plans.test.ts) EXPLAINs, so that a change to a query is what it checks.
   */
  statementSql(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.q).map(([name, s]) => [name, s.source]));
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
    const iso = at.toISOString();
    await this.batched(() => this.q.touchSession.run(iso, id));
  }

  /** Queues a write for the batch of this turn; resolves with its result once that batch commits. */
  private batched<T>(update: () => T): Promise<T> {
    let batch = this.bookkeeping;
    if (!batch) {
      const fresh: BookkeepingBatch = { updates: [], waiters: [] };
      batch = this.bookkeeping = fresh;
      setImmediate(() => this.flushBookkeeping(fresh));
    }
    batch.updates.push(update);
    const waiters = batch.waiters;
    return new Promise<T>((resolve, reject) =>
      waiters.push([resolve as (result: unknown) => void, reject]),
    );
  }

  private flushBookkeeping(batch: BookkeepingBatch): void {
    if (this.bookkeeping !== batch) return;
    this.bookkeeping = undefined;
    let results: unknown[];
    try {
      if (!this.db.open) throw new StorageUnavailableError('the database is closed');
      results = this.write(() =>
        this.db.transaction(() => batch.updates.map((update) => update()))(),
      );
    } catch (error) {
      for (const [, reject] of batch.waiters) reject(error);
      return;
    }
    batch.waiters.forEach(([resolve], i) => resolve(results[i]));
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
    const iso = expiresAt.toISOString();
    await this.batched(() => this.q.insertTicket.run(ticketHash, sessionId, iso));
  }

  async redeemTicket(ticketHash: string): Promise<string | undefined> {
    // In a batch too: the statements of one transaction run one after another, so a ticket
    // redeemed twice in one turn is returned to the first only.
    const row = await this.batched(() => this.q.redeemTicket.get(ticketHash));
    return row && row.expires_at > this.iso() ? row.session_id : undefined;
  }

  async appendMessages(batch: Array<NewEvent | NewMessage>): Promise<AppendResult[]> {
    const created = new Map<string, number>();
    // One timestamp for the batch: it commits at one instant.
    const now = this.iso();
    let results: AppendResult[];
    try {
      results = this.write(
        () =>
          this.db
            .transaction(() => {
              const activity = new ActivityMarks();
              const done = batch.map((m) => this.appendOne(m, now, created, activity));
              for (const [conversationId, id] of activity.all)
                this.q.touchActivityMembers.run(id, conversationId, id);
              for (const [conversationId, userId, id] of activity.one.values())
                this.q.touchActivityOne.run(id, conversationId, userId, id);
              return done;
            })
            .immediate(),
        true,
      );
    } catch (error) {
      // Cached membership read inside a rolled-back transaction may be a phantom.
      this.conversationCache.clear();
      throw error;
    }
    // Cache only what committed: a rolled-back batch must not leave a phantom conversation id.
    for (const [key, id] of created) this.directConversations.set(key, id);
    return results;
  }

  private appendOne(
    input: NewEvent | NewMessage,
    now: string,
    created: Map<string, number>,
    activity: ActivityMarks,
  ): AppendResult {
    const e: NewEvent = 'kind' in input ? input : { kind: 'message', ...input };
    return e.kind === 'message'
      ? this.appendMessage(e, now, created, activity)
      : this.appendChange(e, now, activity);
  }

  private appendMessage(
    e: Extract<NewEvent, { kind: 'message' }>,
    now: string,
    created: Map<string, number>,
    activity: ActivityMarks,
  ): AppendResult {
    const senderId = Number(e.senderId);
    let conversationId: number;
    let receiverId: number | null = null;
    let members: number[] | undefined;
    if (e.receiver !== undefined) {
      const receiver = this.userByName(e.receiver);
      if (!receiver) return { kind: 'unknown_receiver' };
      receiverId = receiver.id;
      conversationId = this.directConversation(senderId, receiver.id, now, created);
    } else {
      conversationId = Number(e.conversationId);
      const conversation = this.conversationFor(conversationId);
      if (!conversation?.members.includes(senderId)) return { kind: 'conversation_not_found' };
      if (conversation.kind === 'direct')
        receiverId = conversation.members.find((id) => id !== senderId) ?? senderId;
      else members = conversation.members;
    }
    const hiddenFrom =
      receiverId !== null && receiverId !== senderId && this.isBlocked(receiverId, senderId)
        ? receiverId
        : null;
    const id = this.insertOnce(senderId, e.clientId, () =>
      this.q.insertMessage.run(
        conversationId,
        senderId,
        receiverId,
        e.content,
        now,
        e.clientId ?? null,
        hiddenFrom,
      ),
    );
    if (typeof id !== 'number') return { kind: 'duplicate', event: id };
    let recipients: number[];
    if (members) {
      this.q.insertInboxMembers.run(id, conversationId);
      activity.members(conversationId, id);
      recipients = members;
    } else if (hiddenFrom !== null || receiverId === senderId) {
      this.q.insertInboxOne.run(senderId, id);
      activity.member(conversationId, senderId, id);
      recipients = [senderId];
    } else {
      this.q.insertInbox.run(senderId, id, receiverId as number, id);
      activity.member(conversationId, senderId, id);
      activity.member(conversationId, receiverId as number, id);
      recipients = [senderId, receiverId as number];
    }
    // Field order as in every message frame: id, conversationId, sender, receiver, content, createdAt.
    const message = {
      id: String(id),
      conversationId: String(conversationId),
      sender: this.username(senderId),
    } as Message;
    if (receiverId !== null) message.receiver = this.username(receiverId);
    message.content = e.content;
    message.createdAt = now;
    const event: StreamEvent = { type: 'message', ...message };
    return { kind: 'stored', event, recipients: recipients.map(String) };
  }

  /** An edit or deletion of the sender's own message: an event, and the message changed. */
  private appendChange(
    e: Extract<NewEvent, { kind: 'edit' | 'delete' }>,
    now: string,
    activity: ActivityMarks,
  ): AppendResult {
    const senderId = Number(e.senderId);
    const target = this.q.target.get(Number(e.messageId));
    if (!target || target.kind !== 'message' || target.hidden_from === senderId)
      return { kind: 'message_not_found' };
    const conversation = this.conversationFor(target.conversation_id);
    const membership = this.q.membership.get(target.conversation_id, senderId);
    if (!conversation || !membership || target.id <= membership.joined_after)
      return { kind: 'message_not_found' };
    if (target.sender_id !== senderId) return { kind: 'not_message_sender' };
    if (target.deleted_at !== null) return { kind: 'message_not_found' };
    const content = e.kind === 'edit' ? e.content : '';
    const id = this.insertOnce(senderId, e.clientId, () =>
      this.q.insertEvent.run(
        target.conversation_id,
        senderId,
        e.kind,
        content,
        now,
        e.clientId ?? null,
        target.id,
        target.hidden_from,
        null,
      ),
    );
    if (typeof id !== 'number') return { kind: 'duplicate', event: id };
    if (e.kind === 'edit') this.q.editMessage.run(content, now, target.id);
    else this.q.deleteMessage.run(now, target.id);
    let recipients: number[];
    if (target.hidden_from !== null) {
      this.q.insertInboxOne.run(senderId, id);
      activity.member(target.conversation_id, senderId, id);
      recipients = [senderId];
    } else {
      this.q.insertInboxMembers.run(id, target.conversation_id);
      activity.members(target.conversation_id, id);
      recipients = conversation.members;
    }
    const base = {
      id: String(id),
      conversationId: String(target.conversation_id),
      messageId: String(target.id),
      sender: this.username(senderId),
    };
    const event: StreamEvent =
      e.kind === 'edit'
        ? { type: 'edit', ...base, content, createdAt: now }
        : { type: 'delete', ...base, createdAt: now };
    return { kind: 'stored', event, recipients: recipients.map(String) };
  }

  /**
   * Runs `insert` unless the sender used `clientId` within the window: then the original event.
   * An expired key not pruned yet is released and the insert repeated.
   */
  private insertOnce(
    senderId: number,
    clientId: string | undefined,
    insert: () => { changes: number; lastInsertRowid: number | bigint },
  ): number | StreamEvent {
    const run = () => {
      const { changes, lastInsertRowid } = insert();
      return changes === 1 ? Number(lastInsertRowid) : undefined;
    };
    let id = run();
    if (id === undefined && clientId !== undefined) {
      const seen = this.q.byClientId.get(senderId, clientId) as { id: number; created_at: string };
      if (Date.parse(seen.created_at) > this.now().getTime() - this.windowMs)
        return toEvent(this.q.messageById.get(seen.id) as MessageRow);
      this.q.releaseClientId.run(seen.id);
      id = run();
    }
    if (id === undefined) throw new Error('event not stored');
    return id;
  }

  /** A conversation's kind and member ids, cached on the writing connection until it changes. */
  private conversationFor(id: number): { kind: 'direct' | 'group'; members: number[] } | undefined {
    let c = this.conversationCache.get(id);
    if (c === undefined) {
      const row = this.q.conversationById.get(id);
      if (!row) return undefined;
      c = { kind: row.kind, members: this.q.memberRoles.all(id).map((m) => m.user_id) };
      if (this.conversationCache.size >= 10_000) this.conversationCache.clear();
      this.conversationCache.set(id, c);
    }
    return c;
  }

  private isBlocked(blockerId: number, blockedId: number): boolean {
    if (this.blockPairs === undefined)
      this.blockPairs = new Set(this.q.blocks.all().map((b) => `${b.blocker_id}:${b.blocked_id}`));
    return this.blockPairs.has(`${blockerId}:${blockedId}`);
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
    return this.page(conversation.id, Number(userId), 0, before, limit);
  }

  async conversationHistory(
    userId: string,
    conversationId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page | undefined> {
    const membership = this.q.membership.get(Number(conversationId), Number(userId));
    if (!membership) return undefined;
    return this.page(
      Number(conversationId),
      Number(userId),
      membership.joined_after,
      before,
      limit,
    );
  }

  private page(
    conversationId: number,
    userId: number,
    after: number,
    before: string | undefined,
    limit: number,
  ): Page {
    const rows = this.q.history.all(
      conversationId,
      before === undefined ? Number.MAX_SAFE_INTEGER : Number(before),
      after,
      userId,
      limit + 1,
    );
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).reverse().map(toMessage), hasMore };
  }

  async stream(userId: string, after: string | undefined, limit: number): Promise<StreamPage> {
    const rows = this.q.stream.all(
      Number(userId),
      after === undefined ? 0 : Number(after),
      limit + 1,
    );
    const hasMore = rows.length > limit;
    return { events: rows.slice(0, limit).map(toEvent), hasMore };
  }

  async directConversationId(userId: string, peerId: string): Promise<string | undefined> {
    const row = this.q.directConversation.get(directKey(Number(userId), Number(peerId)));
    return row && String(row.id);
  }

  async changeConversation(change: ConversationChange, maxMembers: number): Promise<ChangeResult> {
    const now = this.iso();
    const run = (): ChangeResult => {
      const existing = change.kind === 'create' ? undefined : Number(change.conversationId);
      const decision = decide(
        existing === undefined ? undefined : this.groupState(existing),
        change,
        maxMembers,
      );
      if (decision.kind === 'refused') return decision;
      if (decision.kind === 'unchanged')
        return { kind: 'unchanged', conversationId: String(existing) };
      const actor = Number(change.actorId);
      const names = (ids: string[]) => ids.map((id) => this.username(Number(id)));
      let conversationId: number;
      let payload: ConversationPayload;
      switch (decision.kind) {
        case 'create':
          conversationId = this.q.insertGroup.get(decision.title, actor, now)!.id;
          payload = {
            action: 'created',
            ...(decision.title === null ? {} : { title: decision.title }),
            members: names([...decision.admins, ...decision.members]),
          };
          break;
        case 'rename':
          conversationId = existing!;
          this.q.renameGroup.run(decision.title, conversationId);
          payload = { action: 'renamed', title: decision.title };
          break;
        case 'add':
          conversationId = existing!;
          payload = { action: 'members_added', members: names(decision.members) };
          break;
        case 'remove':
          conversationId = existing!;
          payload = { action: 'member_removed', members: names([decision.member]) };
          break;
        case 'role':
          conversationId = existing!;
          this.q.setRole.run(decision.role, conversationId, Number(decision.member));
          payload = {
            action: 'role_changed',
            members: names([decision.member]),
            role: decision.role,
          };
          break;
      }
      const { lastInsertRowid } = this.q.insertEvent.run(
        conversationId,
        actor,
        'conversation',
        '',
        now,
        null,
        null,
        null,
        JSON.stringify(payload),
      );
      const eventId = Number(lastInsertRowid);
      // New members see the group from this event on.
      if (decision.kind === 'create') {
        for (const id of decision.admins)
          this.q.insertGroupMember.run(conversationId, Number(id), now, 'admin', eventId - 1);
        for (const id of decision.members)
          this.q.insertGroupMember.run(conversationId, Number(id), now, 'member', eventId - 1);
      } else if (decision.kind === 'add') {
        for (const id of decision.members)
          this.q.insertGroupMember.run(conversationId, Number(id), now, 'member', eventId - 1);
      }
      // Every member gets the event; one removed gets it as their last one from the group.
      this.q.insertInboxMembers.run(eventId, conversationId);
      this.q.touchActivityMembers.run(eventId, conversationId, eventId);
      const recipients = this.q.memberRoles.all(conversationId).map((m) => String(m.user_id));
      if (decision.kind === 'remove')
        this.q.deleteMember.run(conversationId, Number(decision.member));
      this.conversationCache.delete(conversationId);
      return {
        kind: 'changed',
        conversationId: String(conversationId),
        event: toEvent(this.q.messageById.get(eventId) as MessageRow),
        recipients,
      };
    };
    try {
      return this.write(() => this.db.transaction(run).immediate(), true);
    } catch (error) {
      this.conversationCache.clear();
      throw error;
    }
  }

  private groupState(conversationId: number): GroupState | undefined {
    const row = this.q.conversationById.get(conversationId);
    if (!row) return undefined;
    const members = new Map<string, Role>();
    for (const m of this.q.memberRoles.all(conversationId)) members.set(String(m.user_id), m.role);
    return { kind: row.kind, title: row.title, members };
  }

  async listConversations(
    userId: string,
    options: { before?: string | undefined; limit: number; memberPreview: number },
  ): Promise<{ conversations: Conversation[]; hasMore: boolean }> {
    const uid = Number(userId);
    const before = options.before === undefined ? Number.MAX_SAFE_INTEGER : Number(options.before);
    const rows = this.q.userConversations
      .all(uid, before, options.limit + 1)
      .map((r) => ({ ...r, activity: r.last_id }));
    const page = rows.slice(0, options.limit);
    return {
      conversations: page.map((r) => this.view(r, uid, options.memberPreview)),
      hasMore: rows.length > options.limit,
    };
  }

  async getConversation(
    userId: string,
    conversationId: string,
    memberPreview: number,
  ): Promise<Conversation | undefined> {
    const uid = Number(userId);
    const row = this.q.userConversation.get(uid, Number(conversationId));
    return row && this.view({ ...row, activity: row.last_id }, uid, memberPreview);
  }

  private view(
    r: MembershipRow & { activity: number },
    userId: number,
    memberPreview: number,
  ): Conversation {
    const members: Member[] = this.q.membersPreview.all(r.id, memberPreview).map((m) => ({
      username: m.username,
      role: m.role,
      deliveredUpTo: String(m.delivered_up_to),
      readUpTo: String(m.read_up_to),
    }));
    const last = this.q.lastMessage.get(r.id, r.joined_after, userId);
    return {
      id: String(r.id),
      kind: r.kind,
      title: r.title,
      createdAt: r.created_at,
      memberCount: this.q.memberCount.get(r.id)!.n,
      members,
      lastMessage: last ? toMessage(last) : null,
      lastActivityId: String(r.activity),
      unreadCount: this.q.unreadCount.get(
        r.id,
        Math.max(r.read_up_to, r.joined_after),
        userId,
        userId,
      )!.n,
      role: r.role,
    };
  }

  async membersOf(conversationId: string, userId: string): Promise<string[] | undefined> {
    const ids = this.q.memberRoles.all(Number(conversationId)).map((m) => String(m.user_id));
    return ids.includes(userId) ? ids : undefined;
  }

  async contactsOf(userId: string): Promise<string[]> {
    const uid = Number(userId);
    return this.q.contacts.all(uid, uid).map((r) => String(r.user_id));
  }

  async advanceWatermarks(kind: 'read' | 'delivered', marks: Watermark[]): Promise<Watermark[]> {
    const statement = kind === 'read' ? this.q.advanceRead : this.q.advanceDelivered;
    return this.write(
      this.db.transaction(() => {
        const moved: Watermark[] = [];
        for (const mark of marks) {
          const conversationId = Number(mark.conversationId);
          const newest = this.q.lastEventId.get(conversationId)?.id ?? 0;
          const upTo = Math.min(Number(mark.upTo), newest);
          if (upTo <= 0) continue;
          if (statement.run(upTo, conversationId, Number(mark.userId), upTo).changes > 0)
            moved.push({ ...mark, upTo: String(upTo) });
        }
        return moved;
      }),
    );
  }

  async block(blockerId: string, blockedId: string): Promise<void> {
    this.write(() => this.q.insertBlock.run(Number(blockerId), Number(blockedId), this.iso()));
    this.isBlocked(0, 0);
    this.blockPairs?.add(`${blockerId}:${blockedId}`);
  }

  async unblock(blockerId: string, blockedId: string): Promise<void> {
    this.write(() => this.q.deleteBlock.run(Number(blockerId), Number(blockedId)));
    this.blockPairs?.delete(`${blockerId}:${blockedId}`);
  }

  async listBlocks(userId: string): Promise<User[]> {
    return this.q.listBlocks.all(Number(userId)).map(toUser);
  }

  async blockedBetween(userId: string, others: string[]): Promise<Set<string>> {
    const uid = Number(userId);
    return new Set(
      others.filter((o) => this.q.blockEither.get(uid, Number(o), Number(o), uid)!.n > 0),
    );
  }

  async getSettings(userId: string): Promise<UserSettings> {
    const row = this.q.settings.get(Number(userId));
    return { readReceipts: row?.read_receipts !== 0, showLastSeen: row?.show_last_seen !== 0 };
  }

  async setSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings> {
    const next = { ...(await this.getSettings(userId)), ...settings };
    this.write(() =>
      this.q.setSettings.run(next.readReceipts ? 1 : 0, next.showLastSeen ? 1 : 0, Number(userId)),
    );
    return next;
  }

  async setLastSeen(userId: string, at: Date): Promise<void> {
    const iso = at.toISOString();
    await this.batched(() => this.q.setLastSeen.run(iso, Number(userId)));
  }

  async getLastSeen(userId: string): Promise<string | null> {
    return this.q.lastSeen.get(Number(userId))?.last_seen_at ?? null;
  }

  async lastStreamId(userId: string): Promise<string | undefined> {
    const row = this.q.lastStreamId.get(Number(userId));
    return row && String(row.id);
  }

  /**
   * Deletes expired tickets and releases the idempotency keys older than the window: the
   * window's end by bisection, then the keys in chunks with the event loop free in between, so
   * a large table never stalls the connections.
   */
  async prune(): Promise<void> {
    this.write(() => this.q.pruneTickets.run(this.iso()));
    const cutoff = this.iso(-this.windowMs);
    const last = await lastIdBefore(
      this.releasedUpTo,
      this.q.maxMessageId.get()?.id ?? 0,
      cutoff,
      async (id) => {
        const row = this.q.firstAtOrAfter.get(id);
        return row && { id: row.id, createdAt: row.created_at };
      },
    );
    if (last === undefined) return;
    for (const [from, to] of chunks(this.releasedUpTo, last, RELEASE_CHUNK)) {
      this.write(() => this.q.releaseClientIds.run(from, to, cutoff));
      this.releasedUpTo = to;
      await new Promise((resolve) => setImmediate(resolve));
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
    if (this.bookkeeping) this.flushBookkeeping(this.bookkeeping);
    clearInterval(this.fileCheck);
    this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }
}
