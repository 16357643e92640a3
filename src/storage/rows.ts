// Row shapes and row -> model mappers shared by SqliteStore and PostgresStore: one model in two
// SQL dialects, so a change to it is made once. Where the drivers differ (integer or bigint-text
// ids, ISO text or Date times) a row says so through its Columns parameter.
import type {
  ConversationEvent,
  Message,
  Session,
  StreamEvent,
  User,
  UserRecord,
} from './store.js';

/**
 * How a driver returns the columns whose type depends on the dialect: SQLite integer ids as
 * numbers and times as ISO text; PostgreSQL bigint ids as decimal strings and timestamptz as Date.
 */
export interface Columns {
  id: number | string;
  time: string | Date;
}
export interface SqliteColumns extends Columns {
  id: number;
  time: string;
}
export interface PostgresColumns extends Columns {
  id: string;
  time: Date;
}

export interface UserRow<C extends Columns = Columns> {
  id: C['id'];
  username: string;
  password_hash: string;
  created_at: C['time'];
}
export interface SessionRow<C extends Columns = Columns> {
  id: string;
  user_id: C['id'];
  created_at: C['time'];
  last_used_at: C['time'] | null;
  user_agent: string | null;
  expires_at: C['time'];
  revoked_at: C['time'] | null;
}
/** A row of EVENT_COLUMNS: any event of the stream (a message, an edit, a deletion, a change). */
export interface EventRow<C extends Columns = Columns> {
  id: C['id'];
  kind: 'message' | 'edit' | 'delete' | 'conversation';
  conversation_id: C['id'];
  target_id: C['id'] | null;
  sender: string;
  /** The other user of a direct message; null in a group. */
  receiver: string | null;
  content: string;
  payload: string | null;
  created_at: C['time'];
  edited_at: C['time'] | null;
  deleted_at: C['time'] | null;
}
/** The original name: every message row is an EventRow of kind 'message'. */
export type MessageRow<C extends Columns = Columns> = EventRow<C>;

/** The select list (and joins) whose rows are EventRows; the same SQL in both dialects. */
export const EVENT_COLUMNS = `m.id, m.kind, m.conversation_id, m.target_id, su.username AS sender,
  ru.username AS receiver, m.content, m.payload, m.created_at, m.edited_at, m.deleted_at
  FROM messages m JOIN users su ON su.id = m.sender_id LEFT JOIN users ru ON ru.id = m.receiver_id`;
export const MESSAGE_COLUMNS = EVENT_COLUMNS;

/** What a conversation event's `payload` column holds. */
export type ConversationPayload = Pick<ConversationEvent, 'action'> &
  Partial<Pick<ConversationEvent, 'title' | 'members' | 'role'>>;

/** An id as the API shows it: a decimal string. */
export const idText = (id: Columns['id']): string => String(id);
/** A time as the API shows it: ISO 8601 text. */
export const timeText = (t: Columns['time']): string =>
  typeof t === 'string' ? t : t.toISOString();
const timeTextOrNull = (t: Columns['time'] | null): string | null =>
  t === null ? null : timeText(t);

export const toUser = (r: UserRow): User => ({
  id: idText(r.id),
  username: r.username,
  createdAt: timeText(r.created_at),
});
export const toUserRecord = (r: UserRow): UserRecord => ({
  ...toUser(r),
  passwordHash: r.password_hash,
});
export const toSession = (r: SessionRow): Session => ({
  id: r.id,
  userId: idText(r.user_id),
  createdAt: timeText(r.created_at),
  lastUsedAt: timeTextOrNull(r.last_used_at),
  userAgent: r.user_agent,
  expiresAt: timeText(r.expires_at),
  revokedAt: timeTextOrNull(r.revoked_at),
});
export const toMessage = (r: EventRow): Message => {
  const m = {
    id: idText(r.id),
    conversationId: idText(r.conversation_id),
    sender: r.sender,
  } as Message;
  if (r.receiver !== null) m.receiver = r.receiver;
  if (r.deleted_at === null) m.content = r.content;
  m.createdAt = timeText(r.created_at);
  if (r.edited_at !== null) m.editedAt = timeText(r.edited_at);
  if (r.deleted_at !== null) m.deletedAt = timeText(r.deleted_at);
  return m;
};

/** Any row of the stream as the event (frame) it is. */
export const toEvent = (r: EventRow): StreamEvent => {
  const base = {
    id: idText(r.id),
    conversationId: idText(r.conversation_id),
    createdAt: timeText(r.created_at),
  };
  switch (r.kind) {
    case 'message':
      return { type: 'message', ...toMessage(r) };
    case 'edit':
      return {
        type: 'edit',
        ...base,
        messageId: idText(r.target_id as Columns['id']),
        sender: r.sender,
        content: r.content,
      };
    case 'delete':
      return {
        type: 'delete',
        ...base,
        messageId: idText(r.target_id as Columns['id']),
        sender: r.sender,
      };
    case 'conversation':
      return {
        type: 'conversation',
        ...base,
        actor: r.sender,
        ...(JSON.parse(r.payload ?? '{}') as ConversationPayload),
      };
  }
};
