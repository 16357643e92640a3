// Fills a SQLite database with what the server would have written for N messages: the schema from
// the real store (openSqliteStore runs the migrations), then, opened directly with better-sqlite3
// (journal in memory, no fsync, a large page cache, multi-row statements in transactions of 50,000
// messages), the rows of every table the store's append path writes, in the order it writes them:
// users; per message its `messages` row (ids and created_at growing together, a clientId while it
// is younger than the 24-hour idempotency window, as after the server's prune) and one `inbox` row
// per member; a group's 'conversation' event (action 'created') before its first message; the
// `conversations` rows and `conversation_members` rows with delivered/read watermarks at the
// conversation's last event (one in five still has the last message unread) and their activity. The normal settings
// (WAL) are restored at the end; the file is written as `<out>.partial` and renamed when complete.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { BACKFILL_MEMBER_ACTIVITY } from '../../src/storage/migrations/sqlite/004_member_activity.js';
import { generate, username, type SeedMeta, type ShapeSettings } from './seed-shape.js';

export interface SqliteSeedOptions {
  out: string;
  shape: ShapeSettings;
  passwordHash: string;
  /** Page cache while seeding, MiB (bounds the seeder's memory). */
  cacheMiB: number;
  log: (line: string) => void;
}

const CHUNK = 50_000;
const MSG_ROWS = 100;
const INBOX_ROWS = 400;

/** Runs `sql` with `rows` value tuples of `width` placeholders each. */
function multiRow(db: Database.Database, head: string, width: number, rows: number) {
  const tuple = `(${Array(width).fill('?').join(',')})`;
  return db.prepare(`${head} VALUES ${Array(rows).fill(tuple).join(',')}`);
}

export async function seedSqlite(o: SqliteSeedOptions): Promise<SeedMeta> {
  const started = performance.now();
  const partial = `${o.out}.partial`;
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  for (const f of [partial, `${partial}-wal`, `${partial}-shm`]) fs.rmSync(f, { force: true });
  // The schema exactly as the server makes it.
  const store = await openSqliteStore({ file: partial });
  await store.close();

  const db = new Database(partial);
  // The rollback journal in memory (OFF is refused in better-sqlite3's defensive mode).
  const mode = db.pragma('journal_mode = MEMORY', { simple: true }) as string;
  if (mode !== 'memory') throw new Error(`journal_mode is ${mode}, expected memory`);
  db.pragma('synchronous = OFF');
  db.pragma('foreign_keys = OFF');
  db.pragma(`cache_size = -${o.cacheMiB * 1024}`);
  db.pragma('temp_store = MEMORY');

  const s = o.shape;
  const userCreated = new Date(Date.now() - (s.spanDays + 1) * 86_400_000).toISOString();
  const insertUser = db.prepare(
    'INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (let u = 1; u <= s.users; u++) {
      const name = username(u);
      insertUser.run(u, name, name.toLowerCase(), o.passwordHash, userCreated);
    }
  })();

  const head =
    'INSERT INTO messages (id, conversation_id, sender_id, receiver_id, kind, content, created_at, client_id, payload)';
  const msgCols = 9;
  const insMsgMany = multiRow(db, head, msgCols, MSG_ROWS);
  const insMsgOne = multiRow(db, head, msgCols, 1);
  const insInboxMany = multiRow(db, 'INSERT INTO inbox (user_id, message_id)', 2, INBOX_ROWS);
  const insInboxOne = multiRow(db, 'INSERT INTO inbox (user_id, message_id)', 2, 1);
  let msgBuf: unknown[] = [];
  let inboxBuf: number[] = [];
  const flush = (all: boolean) => {
    if (msgBuf.length === msgCols * MSG_ROWS) {
      insMsgMany.run(msgBuf);
      msgBuf = [];
    }
    if (inboxBuf.length === 2 * INBOX_ROWS) {
      insInboxMany.run(inboxBuf);
      inboxBuf = [];
    }
    if (!all) return;
    for (let i = 0; i < msgBuf.length; i += msgCols) insMsgOne.run(msgBuf.slice(i, i + msgCols));
    for (let i = 0; i < inboxBuf.length; i += 2) insInboxOne.run(inboxBuf.slice(i, i + 2));
    msgBuf = [];
    inboxBuf = [];
  };

  let inboxRows = 0;
  let lastReport = performance.now();
  let reportedAt = 0;
  const begin = db.prepare('BEGIN');
  const commit = db.prepare('COMMIT');
  begin.run();
  const steps = generate(
    s,
    CHUNK,
    {
      event(r) {
        msgBuf.push(
          r.id,
          r.conversationId,
          r.senderId,
          r.receiverId,
          r.kind,
          r.content,
          r.createdAt,
          r.clientId,
          r.payload,
        );
        flush(false);
      },
      inbox(userId, messageId) {
        inboxBuf.push(userId, messageId);
        inboxRows += 1;
        flush(false);
      },
    },
    randomUUID,
  );
  let step = steps.next();
  for (; !step.done; step = steps.next()) {
    const done = step.value;
    flush(true);
    commit.run();
    begin.run();
    const now = performance.now();
    if (now - lastReport >= 5000 || done === s.messages) {
      o.log(
        `messages ${done.toLocaleString('en-US')} / ${s.messages.toLocaleString('en-US')}: ` +
          `${Math.round((done - reportedAt) / ((now - lastReport) / 1000)).toLocaleString('en-US')} messages/s, ` +
          `${inboxRows.toLocaleString('en-US')} inbox rows, ${((now - started) / 1000).toFixed(0)} s`,
      );
      lastReport = now;
      reportedAt = done;
    }
  }
  const generated = step.value;
  commit.run();
  const id = generated.events;

  // Conversations and their members, in id order (as the server created them).
  const insConversation = db.prepare(
    'INSERT INTO conversations (id, kind, direct_key, created_at, title, created_by) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insMember = db.prepare(
    `INSERT INTO conversation_members
       (conversation_id, user_id, joined_at, role, joined_after, read_up_to, delivered_up_to)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (const c of generated.conversations) {
      insConversation.run(c.id, c.kind, c.directKey, c.createdAt, c.title, c.createdBy);
      for (const m of c.members)
        insMember.run(
          c.id,
          m.userId,
          c.createdAt,
          m.role,
          m.joinedAfter,
          m.readUpTo,
          m.deliveredUpTo,
        );
    }
  })();
  // Each membership's newest visible event, as the store writes it with every event (migration 004).
  db.exec(BACKFILL_MEMBER_ACTIVITY);
  const sequence = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get() as
    { seq: number } | undefined;
  if (sequence?.seq !== id) throw new Error(`sqlite_sequence is ${sequence?.seq}, expected ${id}`);
  const wal = db.pragma('journal_mode = WAL', { simple: true }) as string;
  if (wal !== 'wal') throw new Error(`journal_mode is ${wal}, expected wal`);
  db.close();
  fs.renameSync(partial, o.out);
  const bytes = fs.statSync(o.out).size;
  return {
    kind: 'sqlite',
    settings: s,
    events: id,
    conversations: generated.conversations.length,
    seededAt: new Date().toISOString(),
    seconds: Math.round((performance.now() - started) / 100) / 10,
    bytes,
    bytesPerMessage: Math.round(bytes / s.messages),
    topDirect: generated.counts.topDirect(generated.shape, generated.dbIds),
    topUsers: generated.counts.topUsers('stream'),
    mostConversations: generated.counts.topUsers('conversations'),
  };
}

/** Bytes per table and index (dbstat), largest first. */
export function sqliteSpace(file: string): Array<{ name: string; bytes: number }> {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC')
      .all() as Array<{ name: string; bytes: number }>;
  } finally {
    db.close();
  }
}
