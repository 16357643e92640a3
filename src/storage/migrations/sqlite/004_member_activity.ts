// The conversation list read every membership of the caller and, for each, the conversation's
// newest event they may see, then sorted them all to return one page: its cost grew with the
// number of conversations a user had ever joined (456 memberships: 3.4x the time of 21 on the
// growth bench). Each membership now carries that id, written where the event joins the member's
// stream, and an index pages the list in order.
import { sql, type Kysely } from 'kysely';

/**
 * Every membership's newest event it may see: the conversation's newest one not hidden from the
 * member (what the list computed per request until this migration). Also run by the seeder.
 */
export const BACKFILL_MEMBER_ACTIVITY = `UPDATE conversation_members SET last_activity_id = coalesce(
  (SELECT m.id FROM messages m WHERE m.conversation_id = conversation_members.conversation_id
     AND (m.hidden_from IS NULL OR m.hidden_from <> conversation_members.user_id)
   ORDER BY m.id DESC LIMIT 1), 0)`;

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`ALTER TABLE conversation_members ADD COLUMN last_activity_id INTEGER NOT NULL DEFAULT 0`,
    sql.raw(BACKFILL_MEMBER_ACTIVITY),
    sql`CREATE INDEX members_by_activity ON conversation_members(user_id, last_activity_id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
