// The PostgreSQL Store: several server nodes can share one database. A pg.Pool whose connections
// all use the store's schema (search_path set at connection start-up), Kysely's Migrator for the
// versioned schema, and named prepared statements for every query (SQL below, in STATEMENTS).
// Semantics are SqliteStore's; what differs is how they hold across nodes and connections:
// - Commit order = id order: every write that creates a stream event (appendMessages,
//   changeConversation) serialises on one transaction-level advisory lock.
// - Durability: every connection runs with synchronous_commit=on, whatever the server default.
// - An append batch, whatever its size, is one round trip under the lock: one call of a function.
// - Nothing about conversations, members or blocks is cached: another node may change them. Only
//   what never changes is (user names and ids, direct conversations' ids).
import { chunks, lastIdBefore, RELEASE_CHUNK } from './expiry.js';
import { Kysely, Migrator, PostgresDialect, type Migration } from 'kysely';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import * as initial from './migrations/postgres/001_initial.js';
import * as appendFunction from './migrations/postgres/002_append_function.js';
import * as conversations from './migrations/postgres/003_conversations.js';
import * as appendEvents from './migrations/postgres/004_append_events.js';
import * as ticketExpiry from './migrations/postgres/005_ticket_expiry_index.js';
import { decide } from '../chat/membership.js';
import {
  EVENT_COLUMNS,
  timeText,
  toEvent,
  toMessage,
  toSession,
  toUser,
  toUserRecord,
  type ConversationPayload,
  type PostgresColumns,
} from './rows.js';
import type * as Rows from './rows.js';
import {
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
  '002_append_function': appendFunction,
  '003_conversations': conversations,
  '004_append_events': appendEvents,
  '005_ticket_expiry_index': ticketExpiry,
};

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (the password never reaches `description`). */
  url: string;
  /** Where the tables live (default 'public'); created if missing when migrating. */
  schema?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Apply pending migrations (default true); safe when several nodes start at once. */
  migrate?: boolean;
  /** How long a clientId stays reserved for its sender. */
  idempotencyWindowMs?: number;
  now?: () => Date;
}

type UserRow = Rows.UserRow<PostgresColumns>;
type SessionRow = Rows.SessionRow<PostgresColumns>;
type EventRow = Rows.EventRow<PostgresColumns>;

/** A row of append_events (migrations/postgres/004_append_events.ts): one per event passed. */
interface AppendRow extends Omit<EventRow, 'id' | 'kind' | 'conversation_id' | 'sender'> {
  /** 1-based place of the event among those passed. */
  ord: number;
  result:
    | 'stored'
    | 'duplicate'
    | 'repeat'
    | 'conversation_not_found'
    | 'message_not_found'
    | 'not_message_sender';
  /** repeat: the ord of the event it repeats. */
  duplicate_of: number | null;
  /** stored: whose streams it joined; null for a direct message by receiver to its receiver. */
  recipients: string[] | null;
  id: string | null;
  kind: EventRow['kind'] | null;
  conversation_id: string | null;
  sender: string | null;
}

/** A row of the conversation list (conversationsOf, conversationOf). */
interface ConversationRow {
  id: string;
  kind: 'direct' | 'group';
  title: string | null;
  created_at: Date;
  role: Role;
  activity: string;
  member_count: string;
  unread_count: string;
  last_message_id: string | null;
}

/** The caller's conversations with what the list shows; `cm` is the caller's membership. */
const CONVERSATION_COLUMNS = `c.id, c.kind, c.title, c.created_at, cm.role, a.activity,
    (SELECT count(*) FROM conversation_members n WHERE n.conversation_id = c.id) AS member_count,
    (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id
       AND m.id > greatest(cm.read_up_to, cm.joined_after) AND m.kind = 'message'
       AND m.deleted_at IS NULL AND m.sender_id <> cm.user_id
       AND (m.hidden_from IS NULL OR m.hidden_from <> cm.user_id)) AS unread_count,
    (SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.id > cm.joined_after
       AND m.kind = 'message' AND (m.hidden_from IS NULL OR m.hidden_from <> cm.user_id)
       ORDER BY m.id DESC LIMIT 1) AS last_message_id
  FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
  CROSS JOIN LATERAL (
    SELECT coalesce(max(m.id), 0) AS activity FROM messages m
    WHERE m.conversation_id = cm.conversation_id
      AND (m.hidden_from IS NULL OR m.hidden_from <> cm.user_id)
  ) a`;

/** Moves a watermark column forward, never past the conversation's newest event. */
const advance = (column: 'read_up_to' | 'delivered_up_to') => `UPDATE conversation_members cm
    SET ${column} = w.up_to
    FROM (
      SELECT w.conversation_id, w.user_id, least(w.up_to,
        (SELECT coalesce(max(m.id), 0) FROM messages m WHERE m.conversation_id = w.conversation_id)
      ) AS up_to
      FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS w(conversation_id, user_id, up_to)
    ) w
    WHERE cm.conversation_id = w.conversation_id AND cm.user_id = w.user_id AND cm.${column} < w.up_to
    RETURNING cm.conversation_id, cm.user_id, cm.${column} AS up_to`;

/** Every statement, prepared once per connection under its key as name (exported for plan tests). */
export const STATEMENTS = {
  insertUser: `INSERT INTO users (username, username_key, password_hash, created_at)
    VALUES ($1, $2, $3, $4) RETURNING *`,
  userByKey: 'SELECT * FROM users WHERE username_key = $1',
  userById: 'SELECT * FROM users WHERE id = $1',
  // Range scan of the unique index (COLLATE "C": code-point order): [prefix, prefix + U+10FFFF).
  searchUsers: `SELECT * FROM users WHERE username_key >= $1 AND username_key < $2
    ORDER BY username_key LIMIT $3`,
  usersByKeyOrId: `SELECT id, username, username_key FROM users
    WHERE username_key = ANY($1::text[]) OR id = ANY($2::bigint[])`,
  setPassword: 'UPDATE users SET password_hash = $1 WHERE id = $2',
  // One statement, so atomic without a transaction: the session and its first refresh token.
  insertSession: `WITH s AS (
      INSERT INTO sessions (id, user_id, created_at, user_agent, expires_at)
      VALUES ($1, $2, $3, $4, $5) RETURNING *
    ), r AS (INSERT INTO refresh_tokens (token_hash, session_id) SELECT $6, id FROM s)
    SELECT * FROM s`,
  // Locks the token and its session: racing rotations of one token queue here, and each one
  // after the first re-reads the row as committed (READ COMMITTED), so it sees used_at set.
  refreshForUpdate: `SELECT s.*, t.used_at FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
    WHERE t.token_hash = $1 FOR UPDATE OF t, s`,
  spendRefresh: 'UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2',
  insertRefresh: 'INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)',
  extendSession: 'UPDATE sessions SET expires_at = $1 WHERE id = $2',
  sessionById: 'SELECT * FROM sessions WHERE id = $1',
  liveSessions: `SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
    ORDER BY created_at DESC, id`,
  touchSession: 'UPDATE sessions SET last_used_at = $1 WHERE id = $2',
  revokeSession: 'UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
  revokeOthers: `UPDATE sessions SET revoked_at = $1
    WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL RETURNING id`,
  insertTicket: 'INSERT INTO ws_tickets (ticket_hash, session_id, expires_at) VALUES ($1, $2, $3)',
  // The row lock makes it exactly once: a racing DELETE waits, then finds no row.
  redeemTicket: 'DELETE FROM ws_tickets WHERE ticket_hash = $1 RETURNING session_id, expires_at',
  // The whole append batch, one round trip: see migrations/postgres/004_append_events.ts.
  appendEvents:
    'SELECT * FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
  directConversation: 'SELECT id FROM conversations WHERE direct_key = $1',
  // A conversation's messages as one member sees them: after their join, without those hidden
  // from them. The conversation id as a parameter, not a subquery: the planner then sees the
  // value and picks messages_by_conversation rather than walking the primary key backwards.
  history: `SELECT ${EVENT_COLUMNS}
    WHERE m.conversation_id = $1 AND m.id < $2 AND m.id > $3 AND m.kind = 'message'
      AND (m.hidden_from IS NULL OR m.hidden_from <> $4)
    ORDER BY m.id DESC LIMIT $5`,
  stream: `SELECT ${EVENT_COLUMNS} JOIN inbox i ON i.message_id = m.id
    WHERE i.user_id = $1 AND i.message_id > $2 ORDER BY i.message_id LIMIT $3`,
  lastStreamId: `SELECT message_id AS id FROM inbox WHERE user_id = $1
    ORDER BY message_id DESC LIMIT 1`,
  eventsById: `SELECT ${EVENT_COLUMNS} WHERE m.id = ANY($1::bigint[])`,

  // Conversations. changeConversation runs these in one transaction holding the append lock.
  appendLock: 'SELECT pg_advisory_xact_lock($1, $2)',
  groupState: `SELECT c.kind, c.title, cm.user_id, cm.role
    FROM conversations c LEFT JOIN conversation_members cm ON cm.conversation_id = c.id
    WHERE c.id = $1`,
  insertGroup: `INSERT INTO conversations (kind, title, created_by, created_at)
    VALUES ('group', $1, $2, $3) RETURNING id`,
  renameGroup: 'UPDATE conversations SET title = $1 WHERE id = $2',
  setRole: 'UPDATE conversation_members SET role = $1 WHERE conversation_id = $2 AND user_id = $3',
  // The change's event, the members it adds (who see the group from this event on), its inbox
  // rows (every member, the one it removes included: their last event of the group) and the
  // removal. Sub-statements share one snapshot: the members read are those before the change.
  conversationEvent: `WITH e AS (
      INSERT INTO messages (conversation_id, sender_id, kind, content, created_at, payload)
      VALUES ($1, $2, 'conversation', '', $3, $4) RETURNING id
    ), added AS (
      INSERT INTO conversation_members (conversation_id, user_id, joined_at, role, joined_after)
      SELECT $1, a.user_id, $3, a.role, e.id - 1
      FROM e, unnest($5::bigint[], $6::text[]) AS a(user_id, role)
      RETURNING user_id
    ), removed AS (
      DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $7
    ), streams AS (
      INSERT INTO inbox (user_id, message_id)
      SELECT r.user_id, e.id FROM e, (
        SELECT cm.user_id FROM conversation_members cm WHERE cm.conversation_id = $1
        UNION ALL SELECT added.user_id FROM added
      ) r
      RETURNING user_id
    )
    SELECT e.id, ARRAY(SELECT s.user_id FROM streams s ORDER BY s.user_id) AS recipients FROM e`,
  conversationsOf: `SELECT ${CONVERSATION_COLUMNS}
    WHERE cm.user_id = $1 AND a.activity < $2 AND a.activity > 0
    ORDER BY a.activity DESC, c.id DESC LIMIT $3`,
  conversationOf: `SELECT ${CONVERSATION_COLUMNS}
    WHERE cm.user_id = $1 AND cm.conversation_id = $2`,
  // The first members of each conversation, in join order.
  membersPreview: `SELECT c.id AS conversation_id, u.username, p.role, p.read_up_to, p.delivered_up_to
    FROM unnest($1::bigint[]) WITH ORDINALITY AS c(id, ord)
    CROSS JOIN LATERAL (
      SELECT cm.user_id, cm.role, cm.read_up_to, cm.delivered_up_to, cm.joined_after
      FROM conversation_members cm WHERE cm.conversation_id = c.id
      ORDER BY cm.joined_after, cm.user_id LIMIT $2
    ) p
    JOIN users u ON u.id = p.user_id
    ORDER BY c.ord, p.joined_after, p.user_id`,
  membership: `SELECT joined_after FROM conversation_members
    WHERE conversation_id = $1 AND user_id = $2`,
  memberIds: `SELECT user_id FROM conversation_members WHERE conversation_id = $1
    ORDER BY user_id`,
  contacts: `SELECT DISTINCT other.user_id FROM conversation_members mine
    JOIN conversation_members other ON other.conversation_id = mine.conversation_id
    WHERE mine.user_id = $1 AND other.user_id <> $1`,
  advanceRead: advance('read_up_to'),
  advanceDelivered: advance('delivered_up_to'),

  insertBlock: `INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING`,
  deleteBlock: 'DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2',
  listBlocks: `SELECT u.* FROM blocks b JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = $1
    ORDER BY b.created_at, u.id`,
  blockedBetween: `SELECT o.id FROM unnest($2::bigint[]) AS o(id)
    WHERE EXISTS (SELECT FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = o.id)
      OR EXISTS (SELECT FROM blocks b WHERE b.blocker_id = o.id AND b.blocked_id = $1)`,

  settings: 'SELECT read_receipts, show_last_seen FROM users WHERE id = $1',
  // NULL keeps a setting as it is.
  setSettings: `UPDATE users SET read_receipts = coalesce($2, read_receipts),
      show_last_seen = coalesce($3, show_last_seen)
    WHERE id = $1 RETURNING read_receipts, show_last_seen`,
  setLastSeen: 'UPDATE users SET last_seen_at = $1 WHERE id = $2',
  lastSeen: 'SELECT last_seen_at FROM users WHERE id = $1',

  pruneTickets: 'DELETE FROM ws_tickets WHERE expires_at <= $1',
  // The idempotency window's end, by primary-key seeks only (storage/expiry.ts).
  maxMessageId: 'SELECT max(id) AS id FROM messages',
  firstAtOrAfter: 'SELECT id, created_at FROM messages WHERE id >= $1 ORDER BY id LIMIT 1',
  releaseClientIds: `UPDATE messages SET client_id = NULL
    WHERE id > $1 AND id <= $2 AND client_id IS NOT NULL AND created_at < $3`,
  ping: 'SELECT 1',
} as const;

type StatementName = keyof typeof STATEMENTS;
type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * The append lock's key (two-int4 form, apart from Kysely's one-bigint migration lock): class
 * 'chat', object = hash of the schema name, so stores in different schemas of one database do not
 * wait for each other. A hash collision would only cost waiting, never correctness.
 */
const APPEND_LOCK_CLASS = 0x63686174;
/** Upper bound for `before` when absent: the largest bigint. */
const MAX_ID = '9223372036854775807';
const CACHE_MAX = 100_000;

/** FNV-1a of a string as a signed 32-bit integer. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** Compares decimal ids without Number's precision limit. */
const idLess = (a: string, b: string): boolean =>
  a.length !== b.length ? a.length < b.length : a < b;

/** The unique key of the direct conversation between two users, whichever way round. */
const directKey = (a: string, b: string): string => (idLess(a, b) ? `${a}:${b}` : `${b}:${a}`);

/**
 * Whether a caller's id can name a row: a decimal within bigint. Anything else names nothing
 * (as it finds nothing in SQLite) instead of failing the cast in a statement.
 */
const isId = (id: string | undefined): id is string => id !== undefined && /^[0-9]{1,18}$/.test(id);

/** `postgres://host:port/database`: never the user name or password from the URL. */
function describeUrl(url: string, schema: string): string {
  let where = 'postgres:';
  try {
    const u = new URL(url);
    where = `postgres://${u.host}${u.pathname}`;
  } catch {
    // Not a URL pg can read either; opening will say so.
  }
  return schema === 'public' ? where : `${where}?schema=${schema}`;
}

/**
 * Start-up options for every connection: the store's schema, synchronous_commit=on (a commit is
 * on disk before it resolves) and a bound on idle transactions. pg lets an `options` parameter in
 * the URL replace ours, so it is moved out of the URL and kept in front (so is PGOPTIONS).
 */
function connectionSettings(url: string, schema: string): { url: string; options: string } {
  // idle_in_transaction_session_timeout: a node that stalls mid-transaction (paused, partitioned)
  // loses it and its locks instead of holding up the others. (An append holds the append lock
  // only within one call; changeConversation, rare, holds it across the few round trips of its
  // transaction, and a node stalled between them releases it after 30 s.)
  const ours = `-c search_path=${schema} -c synchronous_commit=on -c idle_in_transaction_session_timeout=30000`;
  let theirs = process.env.PGOPTIONS ?? '';
  try {
    const u = new URL(url);
    const fromUrl = u.searchParams.get('options');
    if (fromUrl !== null) {
      theirs = fromUrl;
      u.searchParams.delete('options');
      url = u.toString();
    }
  } catch {
    // Left to pg to report.
  }
  return { url, options: theirs ? `${theirs} ${ours}` : ours };
}

/** Connects the pool, applies pending migrations (creating the schema if missing). */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const schema = options.schema ?? 'public';
  // A plain lower-case identifier: no quoting needed in search_path or in the lock key.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new Error(`schema must be a lower-case SQL identifier, not ${JSON.stringify(schema)}`);
  const settings = connectionSettings(options.url, schema);
  const pool = new pg.Pool({
    connectionString: settings.url,
    options: settings.options,
    max: options.poolSize ?? 10,
  });
  // An idle connection that fails (server restart) is dropped by the pool; the next query opens
  // a new one or reports the error. Without a listener the event would crash the process.
  pool.on('error', () => {});
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  if (options.migrate !== false) {
    // Kysely 0.28's PostgresAdapter holds pg_advisory_lock around the migration transaction, and
    // reads the applied migrations inside it: a second node starting at once waits, then finds
    // nothing to do. migrationTableSchema keeps the bookkeeping tables in our schema (and makes
    // the Migrator create the schema first).
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => MIGRATIONS },
      migrationTableSchema: schema,
    });
    const { error } = await migrator.migrateToLatest();
    if (error) {
      await db.destroy();
      // The first query: say which server, never with its credentials.
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`PostgreSQL at ${describeUrl(options.url, schema)}: ${reason}`, {
        cause: error,
      });
    }
  }
  return new PostgresStore(pool, db, schema, options);
}

interface ResolvedUsers {
  receivers: Map<string, { id: string; username: string }>;
  usernames: Map<string, string>;
}

/** An event of an append batch as passed to append_events, with its place in the batch. */
interface Planned {
  index: number;
  kind: 'message' | 'edit' | 'delete';
  senderId: string;
  sender: string;
  /** A direct message by receiver. */
  receiver: { id: string; username: string } | null;
  directKey: string | null;
  /** By receiver: the cached conversation id (else null); to a conversation: its id. */
  conversationId: string | null;
  /** Edit, delete: the message. */
  targetId: string | null;
  content: string;
  clientId: string | null;
  /** The ord (1-based) of the first earlier planned event with the same (sender, clientId). */
  repeatOf: number | null;
}

export class PostgresStore implements Store {
  readonly description: string;
  private readonly now: () => Date;
  private readonly windowMs: number;
  /** The append lock's object key (see APPEND_LOCK_CLASS). */
  private readonly lockKey: number;
  /** direct_key -> conversation id; conversations are never deleted, so this never goes stale. */
  private readonly directConversations = new Map<string, string>();
  /** Users are never renamed or deleted, so positive caches stay right on every node. */
  private readonly usernames = new Map<string, string>();
  private readonly receivers = new Map<string, { id: string; username: string }>();
  /** Messages up to this id have had their expired idempotency keys released (by this node). */
  private releasedUpTo = '0';
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly db: Kysely<unknown>,
    schema: string,
    options: PostgresStoreOptions,
  ) {
    this.description = describeUrl(options.url, schema);
    this.now = options.now ?? (() => new Date());
    this.windowMs = options.idempotencyWindowMs ?? 24 * 3600_000;
    this.lockKey = hash32(schema);
  }

  private iso(offsetMs = 0): string {
    return new Date(this.now().getTime() + offsetMs).toISOString();
  }

  private run<R extends pg.QueryResultRow>(
    on: Queryable,
    name: StatementName,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return on.query<R>({ name, text: STATEMENTS[name], values });
  }

  private async one<R extends pg.QueryResultRow>(
    name: StatementName,
    values: unknown[],
  ): Promise<R | undefined> {
    return (await this.run<R>(this.pool, name, values)).rows[0];
  }

  /** Runs `work` in a transaction on one connection; rolls back on any error. */
  private async transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => {
        broken = e; // the connection is unusable: the pool discards it
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async createUser(username: string, passwordHash: string): Promise<User> {
    try {
      const row = (await this.one<UserRow>('insertUser', [
        username,
        username.toLowerCase(),
        passwordHash,
        this.iso(),
      ])) as UserRow;
      return toUser(row);
    } catch (error) {
      const e = error as { code?: string; constraint?: string };
      if (e.code === '23505' && e.constraint === 'users_username_key_unique')
        throw new UsernameTakenError();
      throw error;
    }
  }

  async findUserByName(username: string): Promise<UserRecord | undefined> {
    const row = await this.one<UserRow>('userByKey', [username.toLowerCase()]);
    return row && toUserRecord(row);
  }

  async findUserById(id: string): Promise<UserRecord | undefined> {
    const row = await this.one<UserRow>('userById', [id]);
    return row && toUserRecord(row);
  }

  async searchUsers(prefix: string, limit: number): Promise<User[]> {
    const low = prefix.toLowerCase();
    const { rows } = await this.run<UserRow>(this.pool, 'searchUsers', [
      low,
      low + '\u{10ffff}',
      limit,
    ]);
    return rows.map(toUser);
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    await this.run(this.pool, 'setPassword', [passwordHash, userId]);
  }

  async createSession(input: {
    userId: string;
    userAgent: string | null;
    refreshTokenHash: string;
    expiresAt: Date;
  }): Promise<Session> {
    const row = (await this.one<SessionRow>('insertSession', [
      randomBytes(16).toString('base64url'),
      input.userId,
      this.iso(),
      input.userAgent,
      input.expiresAt.toISOString(),
      input.refreshTokenHash,
    ])) as SessionRow;
    return toSession(row);
  }

  async getSession(id: string): Promise<Session | undefined> {
    const row = await this.one<SessionRow>('sessionById', [id]);
    return row && toSession(row);
  }

  async listSessions(userId: string): Promise<Session[]> {
    const { rows } = await this.run<SessionRow>(this.pool, 'liveSessions', [userId, this.iso()]);
    return rows.map(toSession);
  }

  async touchSession(id: string, at: Date): Promise<void> {
    await this.run(this.pool, 'touchSession', [at.toISOString(), id]);
  }

  async revokeSession(id: string): Promise<boolean> {
    return ((await this.run(this.pool, 'revokeSession', [this.iso(), id])).rowCount ?? 0) > 0;
  }

  async revokeOtherSessions(userId: string, keepSessionId: string): Promise<string[]> {
    const { rows } = await this.run<{ id: string }>(this.pool, 'revokeOthers', [
      this.iso(),
      userId,
      keepSessionId,
    ]);
    return rows.map((r) => r.id);
  }

  async rotateRefreshToken(
    oldHash: string,
    newHash: string,
    newExpiresAt: Date,
  ): Promise<RotateResult> {
    return this.transaction(async (c): Promise<RotateResult> => {
      const found = (
        await this.run<SessionRow & { used_at: Date | null }>(c, 'refreshForUpdate', [oldHash])
      ).rows[0];
      const now = this.iso();
      if (!found || found.revoked_at !== null || timeText(found.expires_at) <= now)
        return { kind: 'invalid' };
      if (found.used_at !== null) {
        await this.run(c, 'revokeSession', [now, found.id]);
        return { kind: 'reused', sessionId: found.id };
      }
      await this.run(c, 'spendRefresh', [now, oldHash]);
      await this.run(c, 'insertRefresh', [newHash, found.id]);
      await this.run(c, 'extendSession', [newExpiresAt.toISOString(), found.id]);
      return { kind: 'rotated', session: toSession({ ...found, expires_at: newExpiresAt }) };
    });
  }

  async createTicket(ticketHash: string, sessionId: string, expiresAt: Date): Promise<void> {
    await this.run(this.pool, 'insertTicket', [ticketHash, sessionId, expiresAt.toISOString()]);
  }

  async redeemTicket(ticketHash: string): Promise<string | undefined> {
    const row = await this.one<{ session_id: string; expires_at: Date }>('redeemTicket', [
      ticketHash,
    ]);
    return row && timeText(row.expires_at) > this.iso() ? row.session_id : undefined;
  }

  /**
   * The batch in one round trip: one call of append_events (migration 004), which is its own
   * transaction and has committed when it resolves. Users missing from the caches cost one more,
   * before it, outside the lock.
   *
   * Commit order = id order: a sequence hands out ids in call order, not commit order. If two
   * transactions drew N-1 and N and N committed first, a reader could see N, move its cursor to N
   * and never see N-1. So the function takes pg_advisory_xact_lock first, on every node: ids
   * are drawn and committed by one transaction at a time, and the lock is released only after
   * the commit is visible, so the next holder's ids are larger and become visible later.
   *
   * What the caller can decide alone is decided here (unknown receivers, ids that name nothing,
   * which events share a clientId); everything that depends on the committed state (membership,
   * blocks, the edited message, clientIds held) is decided in the function, under the lock.
   */
  async appendMessages(batch: Array<NewEvent | NewMessage>): Promise<AppendResult[]> {
    // One timestamp for the batch: it commits at one instant.
    const now = this.iso();
    const events = batch.map((m): NewEvent => ('kind' in m ? m : { kind: 'message', ...m }));
    const users = await this.resolveUsers(events);
    const results: AppendResult[] = new Array(batch.length);
    const planned: Planned[] = [];
    // The first planned event with each (sender, clientId): later ones name it as repeatOf.
    const firsts = new Map<string, number>();
    events.forEach((e, index) => {
      let receiver: Planned['receiver'] = null;
      let key: string | null = null;
      let conversationId: string | null = null;
      let targetId: string | null = null;
      if (e.kind === 'message' && e.receiver !== undefined) {
        receiver = users.receivers.get(e.receiver.toLowerCase()) ?? null;
        if (!receiver) {
          results[index] = { kind: 'unknown_receiver' };
          return;
        }
        key = directKey(e.senderId, receiver.id);
        conversationId = this.directConversations.get(key) ?? null;
      } else if (e.kind === 'message') {
        if (!isId(e.conversationId)) {
          results[index] = { kind: 'conversation_not_found' };
          return;
        }
        conversationId = e.conversationId;
      } else {
        if (!isId(e.messageId)) {
          results[index] = { kind: 'message_not_found' };
          return;
        }
        targetId = e.messageId;
      }
      // Refused like a foreign key would (messages has none): the whole batch fails.
      const sender = users.usernames.get(e.senderId);
      if (sender === undefined) throw new Error(`unknown sender ${e.senderId}`);
      const clientId = e.clientId ?? null;
      let repeatOf: number | null = null;
      if (clientId !== null) {
        const claim = `${e.senderId}:${clientId}`;
        repeatOf = firsts.get(claim) ?? null;
        if (repeatOf === null) firsts.set(claim, planned.length + 1);
      }
      planned.push({
        index,
        kind: e.kind,
        senderId: e.senderId,
        sender,
        receiver,
        directKey: key,
        conversationId,
        targetId,
        content: e.kind === 'delete' ? '' : e.content,
        clientId,
        repeatOf,
      });
    });
    if (planned.length === 0) return results;

    const { rows } = await this.run<AppendRow>(this.pool, 'appendEvents', [
      APPEND_LOCK_CLASS,
      this.lockKey,
      now,
      this.iso(-this.windowMs),
      planned.map((p) => p.kind),
      planned.map((p) => p.directKey),
      planned.map((p) => p.conversationId),
      planned.map((p) => p.senderId),
      planned.map((p) => p.receiver?.id ?? null),
      planned.map((p) => p.targetId),
      planned.map((p) => p.content),
      planned.map((p) => p.clientId),
      planned.map((p) => p.repeatOf),
    ]);
    // The stored events by ord, for the repeats of them.
    const stored: StreamEvent[] = [];
    const repeats: AppendRow[] = [];
    for (const r of rows) {
      const p = planned[r.ord - 1]!;
      switch (r.result) {
        case 'stored': {
          const event = this.storedEvent(p, r, now);
          stored[r.ord] = event;
          results[p.index] = {
            kind: 'stored',
            event,
            recipients: r.recipients ?? [p.senderId, p.receiver!.id],
          };
          // The call has committed: a conversation it created can be cached now (never before,
          // or a rolled-back batch would leave a phantom conversation id).
          if (p.directKey !== null && p.conversationId === null)
            this.cacheConversation(p.directKey, r.conversation_id!);
          break;
        }
        case 'duplicate':
          results[p.index] = { kind: 'duplicate', event: toEvent(r as unknown as EventRow) };
          break;
        case 'repeat':
          repeats.push(r);
          break;
        default:
          results[p.index] = { kind: r.result };
      }
    }
    for (const r of repeats) {
      const original = stored[r.duplicate_of!];
      if (original === undefined) throw new Error('repeat of an event not stored');
      results[planned[r.ord - 1]!.index] = { kind: 'duplicate', event: original };
    }
    return results;
  }

  /** A stored event as SqliteStore returns it (same fields, same order). */
  private storedEvent(p: Planned, r: AppendRow, now: string): StreamEvent {
    const id = r.id!;
    const conversationId = r.conversation_id!;
    if (p.kind === 'message') {
      const message = { id, conversationId, sender: p.sender } as Message;
      const receiver = p.receiver?.username ?? r.receiver;
      if (receiver !== null) message.receiver = receiver;
      message.content = p.content;
      message.createdAt = now;
      return { type: 'message', ...message };
    }
    const base = { id, conversationId, messageId: p.targetId!, sender: p.sender };
    return p.kind === 'edit'
      ? { type: 'edit', ...base, content: p.content, createdAt: now }
      : { type: 'delete', ...base, createdAt: now };
  }

  private cacheConversation(key: string, id: string): void {
    if (this.directConversations.size >= CACHE_MAX) this.directConversations.clear();
    this.directConversations.set(key, id);
  }

  /**
   * The batch's receivers (by lower-case name) and senders (by id), from the caches and one query
   * for the rest. Returned rather than read back from the caches, which may be cleared meanwhile.
   */
  private async resolveUsers(
    batch: Array<{ senderId: string; receiver?: string | undefined }>,
  ): Promise<ResolvedUsers> {
    const resolved: ResolvedUsers = { receivers: new Map(), usernames: new Map() };
    const keys = new Set<string>();
    const ids = new Set<string>();
    for (const m of batch) {
      if (m.receiver !== undefined) {
        const key = m.receiver.toLowerCase();
        const receiver = this.receivers.get(key);
        if (receiver) resolved.receivers.set(key, receiver);
        else keys.add(key);
      }
      const sender = this.usernames.get(m.senderId);
      if (sender !== undefined) resolved.usernames.set(m.senderId, sender);
      else if (isId(m.senderId)) ids.add(m.senderId);
    }
    if (keys.size === 0 && ids.size === 0) return resolved;
    const { rows } = await this.run<{ id: string; username: string; username_key: string }>(
      this.pool,
      'usersByKeyOrId',
      [[...keys], [...ids]],
    );
    if (this.receivers.size + rows.length > CACHE_MAX) this.receivers.clear();
    if (this.usernames.size + rows.length > CACHE_MAX) this.usernames.clear();
    for (const r of rows) {
      const user = { id: r.id, username: r.username };
      this.receivers.set(r.username_key, user);
      this.usernames.set(r.id, r.username);
      resolved.receivers.set(r.username_key, user);
      resolved.usernames.set(r.id, r.username);
    }
    return resolved;
  }

  /** The direct conversation of two users, from the cache or the database. */
  private async directConversationOf(userId: string, peerId: string): Promise<string | undefined> {
    if (!isId(userId) || !isId(peerId)) return undefined;
    const key = directKey(userId, peerId);
    let conversation = this.directConversations.get(key);
    if (conversation === undefined) {
      conversation = (await this.one<{ id: string }>('directConversation', [key]))?.id;
      if (conversation !== undefined) this.cacheConversation(key, conversation);
    }
    return conversation;
  }

  async history(
    userId: string,
    peerId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page> {
    const conversation = await this.directConversationOf(userId, peerId);
    if (conversation === undefined) return { messages: [], hasMore: false };
    return this.page(conversation, userId, '0', before, limit);
  }

  async conversationHistory(
    userId: string,
    conversationId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page | undefined> {
    if (!isId(conversationId) || !isId(userId)) return undefined;
    const membership = await this.one<{ joined_after: string }>('membership', [
      conversationId,
      userId,
    ]);
    if (!membership) return undefined;
    return this.page(conversationId, userId, membership.joined_after, before, limit);
  }

  private async page(
    conversationId: string,
    userId: string,
    after: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page> {
    const { rows } = await this.run<EventRow>(this.pool, 'history', [
      conversationId,
      before ?? MAX_ID,
      after,
      userId,
      limit + 1,
    ]);
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).reverse().map(toMessage), hasMore };
  }

  async stream(userId: string, after: string | undefined, limit: number): Promise<StreamPage> {
    const { rows } = await this.run<EventRow>(this.pool, 'stream', [
      userId,
      after ?? '0',
      limit + 1,
    ]);
    const hasMore = rows.length > limit;
    return { events: rows.slice(0, limit).map(toEvent), hasMore };
  }

  async lastStreamId(userId: string): Promise<string | undefined> {
    return (await this.one<{ id: string }>('lastStreamId', [userId]))?.id;
  }

  async directConversationId(userId: string, peerId: string): Promise<string | undefined> {
    return this.directConversationOf(userId, peerId);
  }

  /**
   * One transaction holding the append lock, so the change's event is ordered with messages and
   * changes are decided one at a time against the committed state (decide, chat/membership.ts):
   * BEGIN, lock, read the group, [create, rename or set the role], the event with its members and
   * inbox rows, COMMIT. The user names the event shows are read before, outside the lock.
   */
  async changeConversation(change: ConversationChange, maxMembers: number): Promise<ChangeResult> {
    const now = this.iso();
    const existing = change.kind === 'create' ? undefined : change.conversationId;
    if (existing !== undefined && !isId(existing))
      return { kind: 'refused', reason: 'conversation_not_found' };
    const involved = [change.actorId];
    if (change.kind === 'create' || change.kind === 'add') involved.push(...change.memberIds);
    if (change.kind === 'remove' || change.kind === 'role') involved.push(change.memberId);
    const users = await this.resolveUsers(involved.map((senderId) => ({ senderId })));
    const name = (id: string): string => {
      const username = users.usernames.get(id);
      if (username === undefined) throw new Error(`unknown user ${id}`);
      return username;
    };
    return this.transaction(async (c): Promise<ChangeResult> => {
      await this.run(c, 'appendLock', [APPEND_LOCK_CLASS, this.lockKey]);
      let state: Parameters<typeof decide>[0];
      if (existing !== undefined) {
        const { rows } = await this.run<{
          kind: 'direct' | 'group';
          title: string | null;
          user_id: string | null;
          role: Role | null;
        }>(c, 'groupState', [existing]);
        if (rows[0]) {
          const members = new Map<string, Role>();
          for (const r of rows) if (r.user_id !== null) members.set(r.user_id, r.role!);
          state = { kind: rows[0].kind, title: rows[0].title, members };
        }
      }
      const decision = decide(state, change, maxMembers);
      if (decision.kind === 'refused') return decision;
      if (decision.kind === 'unchanged') return { kind: 'unchanged', conversationId: existing! };
      let conversationId = existing!;
      let payload: ConversationPayload;
      const added: Array<{ id: string; role: Role }> = [];
      let removed: string | null = null;
      switch (decision.kind) {
        case 'create': {
          for (const id of decision.admins) added.push({ id, role: 'admin' });
          for (const id of decision.members) added.push({ id, role: 'member' });
          payload = {
            action: 'created',
            ...(decision.title === null ? {} : { title: decision.title }),
            members: added.map((m) => name(m.id)),
          };
          conversationId = (
            await this.run<{ id: string }>(c, 'insertGroup', [decision.title, change.actorId, now])
          ).rows[0]!.id;
          break;
        }
        case 'rename':
          payload = { action: 'renamed', title: decision.title };
          await this.run(c, 'renameGroup', [decision.title, conversationId]);
          break;
        case 'add':
          for (const id of decision.members) added.push({ id, role: 'member' });
          payload = { action: 'members_added', members: added.map((m) => name(m.id)) };
          break;
        case 'remove':
          payload = { action: 'member_removed', members: [name(decision.member)] };
          removed = decision.member;
          break;
        case 'role':
          payload = {
            action: 'role_changed',
            members: [name(decision.member)],
            role: decision.role,
          };
          await this.run(c, 'setRole', [decision.role, conversationId, decision.member]);
          break;
      }
      const text = JSON.stringify(payload);
      const { rows } = await this.run<{ id: string; recipients: string[] }>(
        c,
        'conversationEvent',
        [
          conversationId,
          change.actorId,
          now,
          text,
          added.map((m) => m.id),
          added.map((m) => m.role),
          removed,
        ],
      );
      const row = rows[0]!;
      const event = toEvent({
        id: row.id,
        kind: 'conversation',
        conversation_id: conversationId,
        target_id: null,
        sender: name(change.actorId),
        receiver: null,
        content: '',
        payload: text,
        created_at: new Date(now),
        edited_at: null,
        deleted_at: null,
      });
      return { kind: 'changed', conversationId, event, recipients: row.recipients };
    });
  }

  async listConversations(
    userId: string,
    options: { before?: string | undefined; limit: number; memberPreview: number },
  ): Promise<{ conversations: Conversation[]; hasMore: boolean }> {
    if (!isId(userId)) return { conversations: [], hasMore: false };
    const before = options.before === undefined ? MAX_ID : options.before;
    if (!/^[0-9]{1,19}$/.test(before)) return { conversations: [], hasMore: false };
    const { rows } = await this.run<ConversationRow>(this.pool, 'conversationsOf', [
      userId,
      before,
      options.limit + 1,
    ]);
    return {
      conversations: await this.views(rows.slice(0, options.limit), options.memberPreview),
      hasMore: rows.length > options.limit,
    };
  }

  async getConversation(
    userId: string,
    conversationId: string,
    memberPreview: number,
  ): Promise<Conversation | undefined> {
    if (!isId(userId) || !isId(conversationId)) return undefined;
    const { rows } = await this.run<ConversationRow>(this.pool, 'conversationOf', [
      userId,
      conversationId,
    ]);
    return (await this.views(rows, memberPreview))[0];
  }

  /** The rows of the conversation list with their member previews and last messages. */
  private async views(rows: ConversationRow[], memberPreview: number): Promise<Conversation[]> {
    if (rows.length === 0) return [];
    const lastIds = rows.flatMap((r) => (r.last_message_id === null ? [] : [r.last_message_id]));
    const [previews, lasts] = await Promise.all([
      this.run<{
        conversation_id: string;
        username: string;
        role: Role;
        read_up_to: string;
        delivered_up_to: string;
      }>(this.pool, 'membersPreview', [rows.map((r) => r.id), memberPreview]),
      lastIds.length === 0
        ? { rows: [] as EventRow[] }
        : this.run<EventRow>(this.pool, 'eventsById', [lastIds]),
    ]);
    const members = new Map<string, Member[]>();
    for (const m of previews.rows) {
      let list = members.get(m.conversation_id);
      if (!list) members.set(m.conversation_id, (list = []));
      list.push({
        username: m.username,
        role: m.role,
        deliveredUpTo: m.delivered_up_to,
        readUpTo: m.read_up_to,
      });
    }
    const messages = new Map(lasts.rows.map((m) => [m.id, toMessage(m)]));
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      title: r.title,
      createdAt: timeText(r.created_at),
      memberCount: Number(r.member_count),
      members: members.get(r.id) ?? [],
      lastMessage: (r.last_message_id !== null && messages.get(r.last_message_id)) || null,
      lastActivityId: r.activity,
      unreadCount: Number(r.unread_count),
      role: r.role,
    }));
  }

  async membersOf(conversationId: string, userId: string): Promise<string[] | undefined> {
    if (!isId(conversationId)) return undefined;
    const { rows } = await this.run<{ user_id: string }>(this.pool, 'memberIds', [conversationId]);
    const ids = rows.map((r) => r.user_id);
    return ids.includes(userId) ? ids : undefined;
  }

  async contactsOf(userId: string): Promise<string[]> {
    if (!isId(userId)) return [];
    const { rows } = await this.run<{ user_id: string }>(this.pool, 'contacts', [userId]);
    return rows.map((r) => r.user_id);
  }

  /**
   * One statement for all the marks (atomic without a transaction). Marks of one member of one
   * conversation count as their furthest; the moved ones come back in the order given.
   */
  async advanceWatermarks(kind: 'read' | 'delivered', marks: Watermark[]): Promise<Watermark[]> {
    const furthest = new Map<string, Watermark>();
    for (const mark of marks) {
      if (!isId(mark.conversationId) || !isId(mark.userId) || !isId(mark.upTo)) continue;
      const key = `${mark.userId}:${mark.conversationId}`;
      const seen = furthest.get(key);
      if (!seen || idLess(seen.upTo, mark.upTo)) furthest.set(key, mark);
    }
    if (furthest.size === 0) return [];
    const wanted = [...furthest.values()];
    const { rows } = await this.run<{ conversation_id: string; user_id: string; up_to: string }>(
      this.pool,
      kind === 'read' ? 'advanceRead' : 'advanceDelivered',
      [wanted.map((m) => m.conversationId), wanted.map((m) => m.userId), wanted.map((m) => m.upTo)],
    );
    const moved = new Map(rows.map((r) => [`${r.user_id}:${r.conversation_id}`, r.up_to]));
    return wanted.flatMap((m) => {
      const upTo = moved.get(`${m.userId}:${m.conversationId}`);
      return upTo === undefined ? [] : [{ ...m, upTo }];
    });
  }

  async block(blockerId: string, blockedId: string): Promise<void> {
    await this.run(this.pool, 'insertBlock', [blockerId, blockedId, this.iso()]);
  }

  async unblock(blockerId: string, blockedId: string): Promise<void> {
    await this.run(this.pool, 'deleteBlock', [blockerId, blockedId]);
  }

  async listBlocks(userId: string): Promise<User[]> {
    const { rows } = await this.run<UserRow>(this.pool, 'listBlocks', [userId]);
    return rows.map(toUser);
  }

  async blockedBetween(userId: string, others: string[]): Promise<Set<string>> {
    const ids = others.filter(isId);
    if (!isId(userId) || ids.length === 0) return new Set();
    const { rows } = await this.run<{ id: string }>(this.pool, 'blockedBetween', [userId, ids]);
    const blocked = new Set(rows.map((r) => r.id));
    return new Set(others.filter((o) => blocked.has(o)));
  }

  async getSettings(userId: string): Promise<UserSettings> {
    const row = isId(userId)
      ? await this.one<{ read_receipts: boolean; show_last_seen: boolean }>('settings', [userId])
      : undefined;
    return { readReceipts: row?.read_receipts ?? true, showLastSeen: row?.show_last_seen ?? true };
  }

  async setSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings> {
    const row = isId(userId)
      ? await this.one<{ read_receipts: boolean; show_last_seen: boolean }>('setSettings', [
          userId,
          settings.readReceipts ?? null,
          settings.showLastSeen ?? null,
        ])
      : undefined;
    return {
      readReceipts: row?.read_receipts ?? settings.readReceipts ?? true,
      showLastSeen: row?.show_last_seen ?? settings.showLastSeen ?? true,
    };
  }

  async setLastSeen(userId: string, at: Date): Promise<void> {
    await this.run(this.pool, 'setLastSeen', [at.toISOString(), userId]);
  }

  async getLastSeen(userId: string): Promise<string | null> {
    if (!isId(userId)) return null;
    const row = await this.one<{ last_seen_at: Date | null }>('lastSeen', [userId]);
    return row?.last_seen_at ? timeText(row.last_seen_at) : null;
  }

  /** As SqliteStore.prune: the window's end by bisection, then the keys in bounded chunks. */
  async prune(): Promise<void> {
    await this.run(this.pool, 'pruneTickets', [this.iso()]);
    const cutoff = this.iso(-this.windowMs);
    const max = (await this.one<{ id: string | null }>('maxMessageId', []))?.id;
    const from = Number(this.releasedUpTo);
    const last = await lastIdBefore(from, Number(max ?? 0), cutoff, async (id) => {
      const row = await this.one<{ id: string; created_at: Date }>('firstAtOrAfter', [String(id)]);
      return row && { id: Number(row.id), createdAt: row.created_at.toISOString() };
    });
    if (last === undefined) return;
    for (const [lo, hi] of chunks(from, last, RELEASE_CHUNK)) {
      await this.run(this.pool, 'releaseClientIds', [String(lo), String(hi), cutoff]);
      this.releasedUpTo = String(hi);
    }
  }

  async ping(): Promise<void> {
    await this.run(this.pool, 'ping', []);
  }

  /** Ends the pool (Kysely's destroy ends it) once in-flight queries finish. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.destroy();
  }
}
