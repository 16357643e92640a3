// Row shapes and row -> model mappers shared by SqliteStore and PostgresStore: one model in two
// SQL dialects, so a change to it is made once. Where the drivers differ (integer or bigint-text
// ids, ISO text or Date times) a row says so through its Columns parameter.
import type { Message, Session, User, UserRecord } from './store.js';

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
/** A row of MESSAGE_COLUMNS. */
export interface MessageRow<C extends Columns = Columns> {
  id: C['id'];
  sender: string;
  receiver: string;
  content: string;
  created_at: C['time'];
}

/** The select list (and joins) whose rows are MessageRows; the same SQL in both dialects. */
export const MESSAGE_COLUMNS = `m.id, su.username AS sender, ru.username AS receiver, m.content, m.created_at
  FROM messages m JOIN users su ON su.id = m.sender_id JOIN users ru ON ru.id = m.receiver_id`;

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
export const toMessage = (r: MessageRow): Message => ({
  id: idText(r.id),
  sender: r.sender,
  receiver: r.receiver,
  content: r.content,
  createdAt: timeText(r.created_at),
});
