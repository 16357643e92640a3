// Groups, receipts, edits, deletions, blocking and user settings. Every message and every change
// to a conversation is a row of `messages` (its `kind`), so they share one id sequence and the
// inbox orders them in one stream. Existing rows are kept as they are: they are direct messages.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`ALTER TABLE conversations ADD COLUMN title TEXT`,
    sql`ALTER TABLE conversations ADD COLUMN created_by INTEGER REFERENCES users(id)`,
    sql`ALTER TABLE conversation_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
      CHECK (role IN ('admin', 'member'))`,
    // The member sees the conversation's events with ids above this (0: all of it).
    sql`ALTER TABLE conversation_members ADD COLUMN joined_after INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE conversation_members ADD COLUMN read_up_to INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE conversation_members ADD COLUMN delivered_up_to INTEGER NOT NULL DEFAULT 0`,
    // 'message', 'edit', 'delete' or 'conversation' (a change to a group).
    sql`ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'`,
    // edit, delete: the message changed.
    sql`ALTER TABLE messages ADD COLUMN target_id INTEGER`,
    // conversation: what changed, as JSON ({action, title, members, role}).
    sql`ALTER TABLE messages ADD COLUMN payload TEXT`,
    sql`ALTER TABLE messages ADD COLUMN edited_at TEXT`,
    sql`ALTER TABLE messages ADD COLUMN deleted_at TEXT`,
    // A direct message from a user the receiver blocks: never shown to that receiver.
    sql`ALTER TABLE messages ADD COLUMN hidden_from INTEGER`,
    sql`ALTER TABLE users ADD COLUMN read_receipts INTEGER NOT NULL DEFAULT 1`,
    sql`ALTER TABLE users ADD COLUMN show_last_seen INTEGER NOT NULL DEFAULT 1`,
    sql`ALTER TABLE users ADD COLUMN last_seen_at TEXT`,
    sql`CREATE TABLE blocks (
      blocker_id INTEGER NOT NULL REFERENCES users(id),
      blocked_id INTEGER NOT NULL REFERENCES users(id),
      created_at TEXT NOT NULL,
      PRIMARY KEY (blocker_id, blocked_id)
    ) WITHOUT ROWID`,
    sql`CREATE INDEX blocks_by_blocked ON blocks(blocked_id, blocker_id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
