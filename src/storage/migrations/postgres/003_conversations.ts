// Groups, receipts, edits, deletions, blocking and user settings: SQLite's 002_conversations.ts in
// PostgreSQL types. Every message and every change to a conversation is a row of `messages` (its
// `kind`), so they share one id sequence and the inbox orders them in one stream. Existing rows are
// kept as they are: they are direct messages. Each ADD COLUMN has a constant default or none, so
// none of them rewrites a table.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`ALTER TABLE conversations ADD COLUMN title text`,
    sql`ALTER TABLE conversations ADD COLUMN created_by bigint REFERENCES users(id)`,
    sql`ALTER TABLE conversation_members ADD COLUMN role text NOT NULL DEFAULT 'member'
      CHECK (role IN ('admin', 'member'))`,
    // The member sees the conversation's events with ids above this (0: all of it).
    sql`ALTER TABLE conversation_members ADD COLUMN joined_after bigint NOT NULL DEFAULT 0`,
    sql`ALTER TABLE conversation_members ADD COLUMN read_up_to bigint NOT NULL DEFAULT 0`,
    sql`ALTER TABLE conversation_members ADD COLUMN delivered_up_to bigint NOT NULL DEFAULT 0`,
    // A group's members in join order, for the member preview of a large group.
    sql`CREATE INDEX members_by_join ON conversation_members (conversation_id, joined_after, user_id)`,
    // 'message', 'edit', 'delete' or 'conversation' (a change to a group).
    sql`ALTER TABLE messages ADD COLUMN kind text NOT NULL DEFAULT 'message'`,
    // edit, delete: the message changed.
    sql`ALTER TABLE messages ADD COLUMN target_id bigint`,
    // conversation: what changed, as JSON text ({action, title, members, role}).
    sql`ALTER TABLE messages ADD COLUMN payload text`,
    sql`ALTER TABLE messages ADD COLUMN edited_at timestamptz`,
    sql`ALTER TABLE messages ADD COLUMN deleted_at timestamptz`,
    // A direct message from a user the receiver blocks: never shown to that receiver.
    sql`ALTER TABLE messages ADD COLUMN hidden_from bigint`,
    // receiver_id: already nullable (001); a group message has none.
    sql`ALTER TABLE users ADD COLUMN read_receipts boolean NOT NULL DEFAULT true`,
    sql`ALTER TABLE users ADD COLUMN show_last_seen boolean NOT NULL DEFAULT true`,
    sql`ALTER TABLE users ADD COLUMN last_seen_at timestamptz`,
    sql`CREATE TABLE blocks (
      blocker_id bigint NOT NULL REFERENCES users(id),
      blocked_id bigint NOT NULL REFERENCES users(id),
      created_at timestamptz NOT NULL,
      PRIMARY KEY (blocker_id, blocked_id)
    )`,
    sql`CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
