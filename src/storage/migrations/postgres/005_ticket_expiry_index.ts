// prune's `DELETE FROM ws_tickets WHERE expires_at <= $1` scanned the whole table: the plan test
// (test/storage/postgres-store.test.ts) found it. SQLite gets the same index in its 003.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX ws_tickets_by_expiry ON ws_tickets (expires_at)`.execute(db);
}
