// Two indexes the plan test (test/storage/sqlite-plans.test.ts) found missing on a hot or periodic
// path: prune's `DELETE FROM ws_tickets WHERE expires_at <= ?` scanned the whole table, and the
// member preview of every listed conversation (`ORDER BY joined_after, user_id LIMIT ?`) sorted all
// of a group's members to return the first few. PostgreSQL has had members_by_join since its 003.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE INDEX ws_tickets_by_expiry ON ws_tickets(expires_at)`,
    sql`CREATE INDEX members_by_join ON conversation_members(conversation_id, joined_after, user_id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
