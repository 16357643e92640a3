// Accounts, sessions, tickets, conversations and messages. Conversations have a kind so that
// groups can join direct chats later without another message table.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE users (
      id INTEGER PRIMARY KEY,
      username TEXT NOT NULL,
      username_key TEXT NOT NULL UNIQUE,
      password_hash TEXT NOT NULL,
      created_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE sessions (
      id TEXT PRIMARY KEY,
      user_id INTEGER NOT NULL REFERENCES users(id),
      created_at TEXT NOT NULL,
      last_used_at TEXT,
      user_agent TEXT,
      expires_at TEXT NOT NULL,
      revoked_at TEXT
    )`,
    sql`CREATE INDEX sessions_by_user ON sessions(user_id, created_at)`,
    // Every refresh token a session was ever given, so that reuse of a spent one is detected.
    sql`CREATE TABLE refresh_tokens (
      token_hash TEXT PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      used_at TEXT
    ) WITHOUT ROWID`,
    sql`CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id)`,
    sql`CREATE TABLE ws_tickets (
      ticket_hash TEXT PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      expires_at TEXT NOT NULL
    ) WITHOUT ROWID`,
    sql`CREATE TABLE conversations (
      id INTEGER PRIMARY KEY,
      kind TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
      direct_key TEXT UNIQUE,
      created_at TEXT NOT NULL
    )`,
    sql`CREATE TABLE conversation_members (
      conversation_id INTEGER NOT NULL REFERENCES conversations(id),
      user_id INTEGER NOT NULL REFERENCES users(id),
      joined_at TEXT NOT NULL,
      PRIMARY KEY (conversation_id, user_id)
    ) WITHOUT ROWID`,
    sql`CREATE INDEX members_by_user ON conversation_members(user_id, conversation_id)`,
    // AUTOINCREMENT: ids are never reused, so a client's cursor stays meaningful forever.
    sql`CREATE TABLE messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      conversation_id INTEGER NOT NULL REFERENCES conversations(id),
      sender_id INTEGER NOT NULL REFERENCES users(id),
      receiver_id INTEGER REFERENCES users(id),
      content TEXT NOT NULL,
      created_at TEXT NOT NULL,
      -- The sender's idempotency key; set to NULL once older than the window, so it can be reused.
      client_id TEXT
    )`,
    sql`CREATE INDEX messages_by_conversation ON messages(conversation_id, id)`,
    // Idempotency: the database, not memory, makes a (sender, clientId) pair store once.
    sql`CREATE UNIQUE INDEX messages_by_client_id ON messages(sender_id, client_id) WHERE client_id IS NOT NULL`,
    // Each user's stream (fan-out on write): sync is one index range scan.
    sql`CREATE TABLE inbox (
      user_id INTEGER NOT NULL,
      message_id INTEGER NOT NULL,
      PRIMARY KEY (user_id, message_id)
    ) WITHOUT ROWID`,
  ];
  for (const statement of statements) await statement.execute(db);
}
