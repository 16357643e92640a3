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

import type { Message, Role, StreamEvent } from '../protocol/message.js';
export type {
  ConversationAction,
  ConversationEvent,
  Message,
  Role,
  StreamEvent,
} from '../protocol/message.js';

/** A user's settings: privacy switches. */
export interface UserSettings {
  /** Send read receipts (and see others'). */
  readReceipts: boolean;
  /** Show when one was last online (and see others'). */
  showLastSeen: boolean;
}

/** One write of the message stream, as validated from one WebSocket frame. */
export type NewEvent =
  | {
      kind: 'message';
      senderId: string;
      /** A direct message: the receiver's username, any case. */
      receiver?: string | undefined;
      /** A message to a conversation (direct or group) the sender is a member of. */
      conversationId?: string | undefined;
      content: string;
      clientId?: string | undefined;
    }
  | {
      kind: 'edit';
      senderId: string;
      messageId: string;
      content: string;
      clientId?: string | undefined;
    }
  | { kind: 'delete'; senderId: string; messageId: string; clientId?: string | undefined };

/** A direct message to store: the original form of NewEvent, kept for callers that send only DMs. */
export interface NewMessage {
  senderId: string;
  /** Receiver's username in any case. */
  receiver: string;
  content: string;
  clientId?: string | undefined;
}

export type AppendResult =
  /**
   * Stored now; `recipients` are the user ids whose streams it joined (sender included): they get
   * it live. `event` is what they get.
   */
  | { kind: 'stored'; event: StreamEvent; recipients: string[] }
  /** The sender used this clientId within the idempotency window: the original event. */
  | { kind: 'duplicate'; event: StreamEvent }
  | { kind: 'unknown_receiver' }
  /** No such conversation, or the sender is not a member of it. */
  | { kind: 'conversation_not_found' }
  /** Edit or delete: no such message visible to the sender (or it is deleted already). */
  | { kind: 'message_not_found' }
  /** Edit or delete of someone else's message. */
  | { kind: 'not_message_sender' };

/** A member of a conversation as the caller sees it. */
export interface Member {
  username: string;
  role: Role;
  /** Watermarks: newest message id delivered to / read by this member ('0' for none). */
  deliveredUpTo: string;
  readUpTo: string;
}

export interface Conversation {
  id: string;
  kind: 'direct' | 'group';
  /** A group's title; null for a direct conversation. */
  title: string | null;
  createdAt: string;
  memberCount: number;
  /** Every member, or the first `memberPreview` of a large group (by join order). */
  members: Member[];
  /** The newest message (a tombstone if deleted), or null. */
  lastMessage: Message | null;
  /** Id of the newest event: what the conversation list is ordered by. */
  lastActivityId: string;
  /** Messages of others newer than the caller's read watermark. */
  unreadCount: number;
  /** The caller's own role. */
  role: Role;
}

/** A change to a group, made by `actorId`; the rules are in chat/membership.ts. */
export type ConversationChange =
  | { kind: 'create'; actorId: string; title: string | null; memberIds: string[] }
  | { kind: 'rename'; actorId: string; conversationId: string; title: string }
  | { kind: 'add'; actorId: string; conversationId: string; memberIds: string[] }
  | { kind: 'remove'; actorId: string; conversationId: string; memberId: string }
  | { kind: 'role'; actorId: string; conversationId: string; memberId: string; role: Role };

export type ChangeResult =
  /** Done: the event joined `recipients`' streams (removed members included). */
  | { kind: 'changed'; conversationId: string; event: StreamEvent; recipients: string[] }
  /** Nothing to do (renamed to its title, added existing members, role unchanged). */
  | { kind: 'unchanged'; conversationId: string }
  | { kind: 'refused'; reason: MembershipRefusal };

export type MembershipRefusal =
  'conversation_not_found' | 'not_admin' | 'last_admin' | 'member_limit' | 'member_not_found';

/** A moved watermark. */
export interface Watermark {
  userId: string;
  conversationId: string;
  upTo: string;
}

export interface Page {
  messages: Message[];
  hasMore: boolean;
}

export interface StreamPage {
  events: StreamEvent[];
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

  /**
   * Stores a batch in one transaction, in order; one result per input, same order. A direct
   * message creates its conversation on first use. A message or change joins the stream of every
   * member of its conversation at commit, except a direct message from a user the receiver
   * blocks: that one joins only the sender's stream, and the receiver never sees it.
   */
  appendMessages(batch: Array<NewEvent | NewMessage>): Promise<AppendResult[]>;
  /** The direct conversation of two users: the newest `limit` before `before`, oldest first. */
  history(userId: string, peerId: string, before: string | undefined, limit: number): Promise<Page>;
  /**
   * A conversation's messages as `userId` sees them (undefined when not a member): like
   * `history`, from the member's join on (a group's earlier history is not shown), without
   * messages hidden from them by a block.
   */
  conversationHistory(
    userId: string,
    conversationId: string,
    before: string | undefined,
    limit: number,
  ): Promise<Page | undefined>;
  /** A user's stream (every event of their conversations since they joined) after `after`. */
  stream(userId: string, after: string | undefined, limit: number): Promise<StreamPage>;
  /** The newest id in a user's stream, or undefined when the stream is empty. */
  lastStreamId(userId: string): Promise<string | undefined>;

  /** The direct conversation of two users, if it exists. */
  directConversationId(userId: string, peerId: string): Promise<string | undefined>;
  /**
   * Applies a change to a group in one transaction, ordered with messages: the rules of
   * chat/membership.ts decide against the committed state, so concurrent changes cannot break
   * them (a group always keeps an admin; never more than `maxMembers`).
   */
  changeConversation(change: ConversationChange, maxMembers: number): Promise<ChangeResult>;
  /**
   * The caller's conversations, most recent activity first, after the `before` activity id;
   * without those where the caller can see nothing (a direct conversation holding only messages
   * hidden from them by a block).
   */
  listConversations(
    userId: string,
    options: { before?: string | undefined; limit: number; memberPreview: number },
  ): Promise<{ conversations: Conversation[]; hasMore: boolean }>;
  /** One conversation as a member sees it; undefined for a non-member. */
  getConversation(
    userId: string,
    conversationId: string,
    memberPreview: number,
  ): Promise<Conversation | undefined>;
  /** User ids of the members of a conversation, or undefined when `userId` is not one of them. */
  membersOf(conversationId: string, userId: string): Promise<string[] | undefined>;
  /** Users who share a conversation with `userId` (not themselves). */
  contactsOf(userId: string): Promise<string[]>;
  /**
   * Moves read or delivered watermarks forward (never back, never past the conversation's newest
   * event); returns those that moved. A non-member's watermark is ignored.
   */
  advanceWatermarks(kind: 'read' | 'delivered', marks: Watermark[]): Promise<Watermark[]>;

  /** Blocks: `blockerId` stops receiving `blockedId`'s direct messages. Idempotent. */
  block(blockerId: string, blockedId: string): Promise<void>;
  unblock(blockerId: string, blockedId: string): Promise<void>;
  /** Users `userId` blocks, by name, oldest block first. */
  listBlocks(userId: string): Promise<User[]>;
  /** Of `others`, those who block `userId` or whom `userId` blocks. */
  blockedBetween(userId: string, others: string[]): Promise<Set<string>>;

  getSettings(userId: string): Promise<UserSettings>;
  setSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings>;
  /** Records when a user was last online. */
  setLastSeen(userId: string, at: Date): Promise<void>;
  getLastSeen(userId: string): Promise<string | null>;

  /** Deletes expired tickets and idempotency keys older than the window. */
  prune(): Promise<void>;
  /** Resolves when the storage answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
