// The Store: everything the server keeps. One interface, one implementation per technology
// (sqlite-store.ts, its worker-thread wrapper, postgres-store.ts), one contract suite
// (test/storage/store.contract.ts) that every implementation must pass.

/** A registered account as the API shows it. */
export interface User {
  id: string;
  username: string;
  createdAt: string;
}

/** An account with its password hash; never leaves the server. */
export interface UserRecord extends User {
  passwordHash: string;
}

export interface Session {
  id: string;
  userId: string;
  createdAt: string;
  lastUsedAt: string | null;
  userAgent: string | null;
  /** When the refresh token stops working unless it is used (sliding). */
  expiresAt: string;
  revokedAt: string | null;
}

/** A stored message, as history, sync and the WebSocket show it. */
export interface Message {
  id: string;
  sender: string;
  receiver: string;
  content: string;
  createdAt: string;
}

/** A message to store, as validated from one WebSocket frame. */
export interface NewMessage {
  senderId: string;
  /** Receiver's username in any case. */
  receiver: string;
  content: string;
  clientId?: string | undefined;
}

export type AppendResult =
  /** Stored now; `recipients` are the user ids whose streams it joined (sender included). */
  | { kind: 'stored'; message: Message; recipients: string[] }
  /** The sender used this clientId within the idempotency window: the original message. */
  | { kind: 'duplicate'; message: Message }
  | { kind: 'unknown_receiver' };

export interface Page {
  messages: Message[];
  hasMore: boolean;
}

export type RotateResult =
  | { kind: 'rotated'; session: Session }
  /** The token had been used before: the whole session is now revoked. */
  | { kind: 'reused'; sessionId: string }
  | { kind: 'invalid' };

/** Thrown by `createUser` when the username exists in any letter case. */
export class UsernameTakenError extends Error {
  constructor() {
    super('username taken');
    this.name = 'UsernameTakenError';
  }
}

/**
 * Thrown by a write when the storage cannot take writes now: the disk is full, the database
 * file was deleted or replaced under the server, an I/O error. Nothing of that write can be
 * relied on (for `appendMessages`: no ack); retrying later may succeed. Constraint violations and
 * other refusals of the request itself are not this.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/**
 * Guarantees every implementation gives:
 *
 * - Durability: a promise that resolves has committed its writes durably (SQLite: WAL with
 *   synchronous=FULL, so the commit is fsynced). `appendMessages` resolving is what allows an ack.
 * - Message order: ids are decimal strings of one strictly increasing sequence, assigned in commit
 *   order: once a message with id N is readable, no message with a smaller id becomes readable
 *   later. So a cursor (`before`, `after`) never skips or repeats a message under concurrent
 *   inserts. Messages of one `appendMessages` batch get ids in the batch's order.
 * - Idempotency: `appendMessages` stores a (sender, clientId) pair at most once within
 *   `idempotencyWindowMs`, enforced by a unique key in the database, not by memory.
 * - Atomicity: `rotateRefreshToken` and `redeemTicket` succeed at most once per token, however
 *   many callers race; `appendMessages` commits its whole batch or none of it.
 * - Usernames are unique regardless of case; lookups by name ignore case and return the
 *   registered spelling.
 */
export interface Store {
  /** What the start-up line shows, e.g. `sqlite:data/chat.db`. */
  readonly description: string;

  createUser(username: string, passwordHash: string): Promise<User>;
  findUserByName(username: string): Promise<UserRecord | undefined>;
  findUserById(id: string): Promise<UserRecord | undefined>;
  /** Users whose name starts with `prefix` (any case), ordered by name. */
  searchUsers(prefix: string, limit: number): Promise<User[]>;
  setPasswordHash(userId: string, passwordHash: string): Promise<void>;

  createSession(input: {
    userId: string;
    userAgent: string | null;
    refreshTokenHash: string;
    expiresAt: Date;
  }): Promise<Session>;
  getSession(id: string): Promise<Session | undefined>;
  /** Live (not revoked, not expired) sessions of a user, newest first. */
  listSessions(userId: string): Promise<Session[]>;
  touchSession(id: string, at: Date): Promise<void>;
  /** Revokes one session; false when it did not exist or was already revoked. */
  revokeSession(id: string): Promise<boolean>;
  /** Revokes every live session of the user but one; returns the revoked ids. */
  revokeOtherSessions(userId: string, keepSessionId: string): Promise<string[]>;
  /** Exchanges a refresh token for a new one: exactly once per token (see RotateResult). */
  rotateRefreshToken(oldHash: string, newHash: string, newExpiresAt: Date): Promise<RotateResult>;

  createTicket(ticketHash: string, sessionId: string, expiresAt: Date): Promise<void>;
  /** Consumes a ticket: the first caller gets its session id, every later one undefined. */
  redeemTicket(ticketHash: string): Promise<string | undefined>;

  /** Stores a batch in one transaction, in order; one result per input, same order. */
  appendMessages(batch: NewMessage[]): Promise<AppendResult[]>;
  /** The direct conversation of two users: the newest `limit` before `before`, oldest first. */
  history(userId: string, peerId: string, before: string | undefined, limit: number): Promise<Page>;
  /** A user's stream (every message sent or received) after `after`, oldest first. */
  stream(userId: string, after: string | undefined, limit: number): Promise<Page>;
  /** The newest id in a user's stream, or undefined when the stream is empty. */
  lastStreamId(userId: string): Promise<string | undefined>;

  /** Deletes expired tickets and idempotency keys older than the window. */
  prune(): Promise<void>;
  /** Resolves when the storage answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
