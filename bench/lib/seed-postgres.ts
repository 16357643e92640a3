// Fills a PostgreSQL database with what the server would have written for N messages, like
// seed-sqlite.ts: the schema from the real store (openPostgresStore runs the migrations), then the
// same rows (seed-shape.ts `generate`), sent as multi-row `INSERT ... SELECT FROM unnest(...)`
// of 20,000 messages per transaction with synchronous_commit off for this session only, ids given
// explicitly and the identity sequences moved past them at the end, then VACUUM ANALYZE (what
// autovacuum would have done to a database that grew to this size).
//
// The server always uses the `public` schema of the database it is given, so a seed is a database
// of its own, `chat_seed_<messages>_<users>` on the same server, which a benchmark clones with
// `CREATE DATABASE ... TEMPLATE` (a file copy) for each run. Its settings and the users to measure
// with are kept in a `bench_seed_meta` table of that database (not one the server reads).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openPostgresStore } from '../../src/storage/postgres-store.js';
import { generate, username, type SeedMeta, type ShapeSettings } from './seed-shape.js';

export interface PostgresSeedOptions {
  /** Any database on the server (the seed database is created beside it). */
  url: string;
  database: string;
  shape: ShapeSettings;
  passwordHash: string;
  force: boolean;
  log: (line: string) => void;
}

const CHUNK = 20_000;

/** The URL of `database` on the server of `url`. */
export function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The seed's record, if `database` exists and was seeded to the end. */
export async function readPostgresSeedMeta(
  url: string,
  database: string,
): Promise<SeedMeta | undefined> {
  const client = new pg.Client({ connectionString: databaseUrl(url, database) });
  try {
    await client.connect();
  } catch {
    return undefined;
  }
  try {
    const { rows } = await client.query<{ meta: SeedMeta }>(
      'SELECT meta FROM bench_seed_meta LIMIT 1',
    );
    return rows[0]?.meta;
  } catch {
    return undefined;
  } finally {
    await client.end();
  }
}

export async function seedPostgres(o: PostgresSeedOptions): Promise<SeedMeta> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(o.database))
    throw new Error(`database must be a lower-case SQL identifier, not ${o.database}`);
  const s = o.shape;
  const existing = await readPostgresSeedMeta(o.url, o.database);
  if (
    existing &&
    !o.force &&
    (Object.keys(s) as Array<keyof ShapeSettings>).every((k) => existing.settings[k] === s[k])
  ) {
    o.log(`database ${o.database} holds this seed already (--force seeds again)`);
    return existing;
  }
  const started = performance.now();
  const admin = new pg.Client({ connectionString: o.url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${o.database}`);
    await admin.query(`CREATE DATABASE ${o.database}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(o.url, o.database);
  const store = await openPostgresStore({ url });
  await store.close();

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query('SET synchronous_commit = off');
    const userCreated = new Date(Date.now() - (s.spanDays + 1) * 86_400_000).toISOString();
    for (let from = 1; from <= s.users; from += 20_000) {
      const ids: number[] = [];
      for (let u = from; u < Math.min(s.users + 1, from + 20_000); u++) ids.push(u);
      const names = ids.map(username);
      await db.query(
        `INSERT INTO users (id, username, username_key, password_hash, created_at)
         OVERRIDING SYSTEM VALUE
         SELECT id, name, lower(name), $3, $4 FROM unnest($1::bigint[], $2::text[]) AS u(id, name)`,
        [ids, names, o.passwordHash, userCreated],
      );
    }

    let m = emptyMessages();
    let inbox: { user: number[]; message: number[] } = { user: [], message: [] };
    let inboxRows = 0;
    const steps = generate(
      s,
      CHUNK,
      {
        event(r) {
          m.id.push(r.id);
          m.conversation.push(r.conversationId);
          m.sender.push(r.senderId);
          m.receiver.push(r.receiverId);
          m.kind.push(r.kind);
          m.content.push(r.content);
          m.at.push(r.createdAt);
          m.client.push(r.clientId);
          m.payload.push(r.payload);
        },
        inbox(userId, messageId) {
          inbox.user.push(userId);
          inbox.message.push(messageId);
          inboxRows += 1;
        },
      },
      randomUUID,
    );
    let lastReport = performance.now();
    let reportedAt = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) {
      const done = step.value;
      await db.query('BEGIN');
      await db.query(
        `INSERT INTO messages (id, conversation_id, sender_id, receiver_id, kind, content, created_at, client_id, payload)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
           $6::text[], $7::timestamptz[], $8::text[], $9::text[])`,
        [m.id, m.conversation, m.sender, m.receiver, m.kind, m.content, m.at, m.client, m.payload],
      );
      await db.query(
        'INSERT INTO inbox (user_id, message_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])',
        [inbox.user, inbox.message],
      );
      await db.query('COMMIT');
      m = emptyMessages();
      inbox = { user: [], message: [] };
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

    const c = generated.conversations;
    for (let from = 0; from < c.length; from += 20_000) {
      const part = c.slice(from, from + 20_000);
      await db.query('BEGIN');
      await db.query(
        `INSERT INTO conversations (id, kind, direct_key, created_at, title, created_by)
         OVERRIDING SYSTEM VALUE
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[])`,
        [
          part.map((x) => x.id),
          part.map((x) => x.kind),
          part.map((x) => x.directKey),
          part.map((x) => x.createdAt),
          part.map((x) => x.title),
          part.map((x) => x.createdBy),
        ],
      );
      const members = part.flatMap((x) =>
        x.members.map((mm) => ({ ...mm, conversation: x.id, at: x.createdAt })),
      );
      await db.query(
        `INSERT INTO conversation_members
           (conversation_id, user_id, joined_at, role, joined_after, read_up_to, delivered_up_to)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::bigint[],
           $6::bigint[], $7::bigint[])`,
        [
          members.map((x) => x.conversation),
          members.map((x) => x.userId),
          members.map((x) => x.at),
          members.map((x) => x.role),
          members.map((x) => x.joinedAfter),
          members.map((x) => x.readUpTo),
          members.map((x) => x.deliveredUpTo),
        ],
      );
      await db.query('COMMIT');
    }
    // The identity sequences continue after the seeded ids, as if the server had drawn them.
    for (const [table, column] of [
      ['users', 'id'],
      ['conversations', 'id'],
      ['messages', 'id'],
    ] as const) {
      await db.query(
        `SELECT setval(pg_get_serial_sequence('${table}', '${column}'), (SELECT max(${column}) FROM ${table}))`,
      );
    }
    o.log('VACUUM ANALYZE');
    await db.query('VACUUM ANALYZE');
    const { rows } = await db.query<{ bytes: string }>(
      'SELECT pg_database_size(current_database()) AS bytes',
    );
    const bytes = Number(rows[0]?.bytes);
    const meta: SeedMeta = {
      kind: 'postgres',
      settings: s,
      events: generated.events,
      conversations: c.length,
      seededAt: new Date().toISOString(),
      seconds: Math.round((performance.now() - started) / 100) / 10,
      bytes,
      bytesPerMessage: Math.round(bytes / s.messages),
      topDirect: generated.counts.topDirect(generated.shape, generated.dbIds),
      topUsers: generated.counts.topUsers('stream'),
      mostConversations: generated.counts.topUsers('conversations'),
    };
    await db.query('CREATE TABLE bench_seed_meta (meta jsonb NOT NULL)');
    await db.query('INSERT INTO bench_seed_meta (meta) VALUES ($1)', [JSON.stringify(meta)]);
    return meta;
  } finally {
    await db.end();
  }
}

function emptyMessages() {
  return {
    id: [] as number[],
    conversation: [] as number[],
    sender: [] as number[],
    receiver: [] as Array<number | null>,
    kind: [] as string[],
    content: [] as string[],
    at: [] as string[],
    client: [] as Array<string | null>,
    payload: [] as Array<string | null>,
  };
}

/** Bytes per table with its indexes and TOAST, largest first. */
export async function postgresSpace(
  url: string,
  database: string,
): Promise<Array<{ name: string; bytes: number }>> {
  const client = new pg.Client({ connectionString: databaseUrl(url, database) });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; bytes: string }>(
      `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC`,
    );
    return rows.map((r) => ({ name: r.name, bytes: Number(r.bytes) }));
  } finally {
    await client.end();
  }
}
