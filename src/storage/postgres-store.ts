// The PostgreSQL Store: several server nodes can share one database. A pg.Pool whose connections
// all use the store's schema (search_path set at connection start-up), Kysely's Migrator for the
// versioned schema, and named prepared statements for every query (SQL below, in STATEMENTS).
// Semantics are SqliteStore's; what differs is how they hold across nodes and connections:
// - Commit order = id order: appendMessages serialises on a transaction-level advisory lock.
// - Durability: every connection runs with synchronous_commit=on, whatever the server default.
// - An append batch, whatever its size, is one round trip under the lock: one call of a function.
import { Kysely, Migrator, PostgresDialect, type Migration } from 'kysely';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import * as initial from './migrations/postgres/001_initial.js';
import * as appendFunction from './migrations/postgres/002_append_function.js';
import {
  MESSAGE_COLUMNS,
  timeText,
  toMessage,
  toSession,
  toUser,
  toUserRecord,
  type PostgresColumns,
} from './rows.js';
import type * as Rows from './rows.js';
import {
  UsernameTakenError,
  type AppendResult,
  type Message,
  type NewMessage,
  type Page,
  type RotateResult,
  type Session,
  type Store,
  type User,
  type UserRecord,
} from './store.js';

const MIGRATIONS: Record<string, Migration> = {
  '001_initial': initial,
  '002_append_function': appendFunction,
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
type MessageRow = Rows.MessageRow<PostgresColumns>;
/** A row of append_messages: a stored message's id, or a duplicate's original message. */
interface AppendRow {
  /** 1-based place of the message among those passed. */
  ord: number;
  id: string;
  conversation_id: string;
  duplicate: boolean;
  sender: string | null;
  receiver: string | null;
  content: string | null;
  created_at: Date | null;
}

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
  // The whole append batch, one round trip: see migrations/postgres/002_append_function.ts.
  appendMessages: 'SELECT * FROM append_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
  directConversation: 'SELECT id FROM conversations WHERE direct_key = $1',
  // The conversation id as a parameter, not a subquery: the planner then sees the value and
  // picks messages_by_conversation rather than walking the primary key backwards.
  history: `SELECT ${MESSAGE_COLUMNS}
    WHERE m.conversation_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3`,
  stream: `SELECT ${MESSAGE_COLUMNS} JOIN inbox i ON i.message_id = m.id
    WHERE i.user_id = $1 AND i.message_id > $2 ORDER BY i.message_id LIMIT $3`,
  lastStreamId: `SELECT message_id AS id FROM inbox WHERE user_id = $1
    ORDER BY message_id DESC LIMIT 1`,
  pruneTickets: 'DELETE FROM ws_tickets WHERE expires_at <= $1',
  lastIdBefore: 'SELECT max(id) AS id FROM messages WHERE id > $1 AND created_at < $2',
  releaseClientIds: `UPDATE messages SET client_id = NULL
    WHERE id > $1 AND id <= $2 AND client_id IS NOT NULL`,
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
  // only within one call, never across round trips.)
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

/** A message of a batch that has a receiver and is not a repeat of an earlier one in the batch. */
interface Planned {
  senderId: string;
  sender: string;
  receiver: { id: string; username: string };
  conversationKey: string;
  content: string;
  clientId: string | null;
  /** Set when the sender's clientId is held by a message within the window. */
  duplicate?: Message;
  id?: string;
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
   * The batch in one round trip: one call of append_messages (migration 002), which is its own
   * transaction and has committed when it resolves. Users missing from the caches cost one more,
   * before it, outside the lock.
   *
   * Commit order = id order: a sequence hands out ids in call order, not commit order. If two
   * transactions drew N-1 and N and N committed first, a reader could see N, move its cursor to N
   * and never see N-1. So the function takes pg_advisory_xact_lock first, on every node: ids
   * are drawn and committed by one transaction at a time, and the lock is released only after
   * the commit is visible, so the next holder's ids are larger and become visible later.
   */
  async appendMessages(batch: NewMessage[]): Promise<AppendResult[]> {
    // One timestamp for the batch: it commits at one instant.
    const now = this.iso();
    const users = await this.resolveUsers(batch);
    const results: AppendResult[] = new Array(batch.length);
    // Messages with a receiver, in batch order, with their place in the batch.
    const planned: Array<{ index: number; p: Planned }> = [];
    // The first message of the batch with each (sender, clientId); a later one is its duplicate,
    // as in SqliteStore, which stores the first and then finds the key taken.
    const firsts = new Map<string, Planned>();
    const repeats: Array<{ index: number; of: Planned }> = [];
    batch.forEach((m, index) => {
      const receiver = users.receivers.get(m.receiver.toLowerCase());
      if (!receiver) {
        results[index] = { kind: 'unknown_receiver' };
        return;
      }
      const clientId = m.clientId ?? null;
      const claim = clientId === null ? undefined : `${m.senderId}:${clientId}`;
      const first = claim === undefined ? undefined : firsts.get(claim);
      if (first) {
        repeats.push({ index, of: first });
        return;
      }
      // Refused like a foreign key would (messages has none): the whole batch fails.
      const sender = users.usernames.get(m.senderId);
      if (sender === undefined) throw new Error(`unknown sender ${m.senderId}`);
      const p: Planned = {
        senderId: m.senderId,
        sender,
        receiver,
        conversationKey: directKey(m.senderId, receiver.id),
        content: m.content,
        clientId,
      };
      if (claim !== undefined) firsts.set(claim, p);
      planned.push({ index, p });
    });

    if (planned.length > 0)
      await this.writeBatch(
        planned.map(({ p }) => p),
        now,
      );

    const messageOf = (p: Planned): Message => p.duplicate ?? this.storedMessage(p, now);
    for (const { index, p } of planned)
      results[index] = p.duplicate
        ? { kind: 'duplicate', message: p.duplicate }
        : {
            kind: 'stored',
            message: messageOf(p),
            recipients: p.receiver.id === p.senderId ? [p.senderId] : [p.senderId, p.receiver.id],
          };
    for (const { index, of } of repeats)
      results[index] = { kind: 'duplicate', message: messageOf(of) };
    return results;
  }

  private storedMessage(p: Planned, now: string): Message {
    if (p.id === undefined) throw new Error('message not stored');
    return {
      id: p.id,
      sender: p.sender,
      receiver: p.receiver.username,
      content: p.content,
      createdAt: now,
    };
  }

  private cacheConversation(key: string, id: string): void {
    if (this.directConversations.size >= CACHE_MAX) this.directConversations.clear();
    this.directConversations.set(key, id);
  }

  /** Stores the planned messages: sets each one's id, or its duplicate. */
  private async writeBatch(planned: Planned[], now: string): Promise<void> {
    // Read once, before the call: the cache may be cleared while it runs.
    const known = planned.map((p) => this.directConversations.get(p.conversationKey) ?? null);
    const { rows } = await this.run<AppendRow>(this.pool, 'appendMessages', [
      APPEND_LOCK_CLASS,
      this.lockKey,
      now,
      this.iso(-this.windowMs),
      planned.map((p) => p.conversationKey),
      known,
      planned.map((p) => p.senderId),
      planned.map((p) => p.receiver.id),
      planned.map((p) => p.content),
      planned.map((p) => p.clientId),
    ]);
    // The call has committed: a conversation it created can be cached now (never before, or a
    // rolled-back batch would leave a phantom conversation id).
    for (const r of rows) {
      const p = planned[r.ord - 1]!;
      if (r.duplicate) p.duplicate = toMessage(r as MessageRow);
      else p.id = r.id;
      if (known[r.ord - 1] === null) this.cacheConversation(p.conversationKey, r.conversation_id);
    }
  }

  /**
   * The batch's receivers (by lower-case name) and senders (by id), from the caches and one query
   * for the rest. Returned rather than read back from the caches, which may be cleared meanwhile.
   */
  private async resolveUsers(batch: NewMessage[]): Promise<ResolvedUsers> {
    const resolved: ResolvedUsers = { receivers: new Map(), usernames: new Map() };
    const keys = new Set<string>();
    const ids = new Set<string>();
    for (const m of batch) {
      const key = m.receiver.toLowerCase();
      const receiver = this.receivers.get(key);
      if (receiver) resolved.receivers.set(key, receiver);
      else keys.add(key);
      const sender = this.usernames.get(m.senderId);
      if (sender !== undefined) resolved.usernames.set(m.senderId, sender);
      else ids.add(m.senderId);
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

  async history(
    userId: string,
    peerId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page> {
    const key = directKey(userId, peerId);
    let conversation = this.directConversations.get(key);
    if (conversation === undefined) {
      conversation = (await this.one<{ id: string }>('directConversation', [key]))?.id;
      if (conversation === undefined) return { messages: [], hasMore: false };
      this.cacheConversation(key, conversation);
    }
    const { rows } = await this.run<MessageRow>(this.pool, 'history', [
      conversation,
      before ?? MAX_ID,
      limit + 1,
    ]);
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).reverse().map(toMessage), hasMore };
  }

  async stream(userId: string, after: string | undefined, limit: number): Promise<Page> {
    const { rows } = await this.run<MessageRow>(this.pool, 'stream', [
      userId,
      after ?? '0',
      limit + 1,
    ]);
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).map(toMessage), hasMore };
  }

  async lastStreamId(userId: string): Promise<string | undefined> {
    return (await this.one<{ id: string }>('lastStreamId', [userId]))?.id;
  }

  async prune(): Promise<void> {
    await this.run(this.pool, 'pruneTickets', [this.iso()]);
    const last = (
      await this.one<{ id: string | null }>('lastIdBefore', [
        this.releasedUpTo,
        this.iso(-this.windowMs),
      ])
    )?.id;
    if (last != null) {
      await this.run(this.pool, 'releaseClientIds', [this.releasedUpTo, last]);
      this.releasedUpTo = last;
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
