// The Store contract against SQLite, plus what only SQLite promises (pragmas, migrations).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import * as initial from '../../src/storage/migrations/sqlite/001_initial.js';
import { BACKFILL_MEMBER_ACTIVITY } from '../../src/storage/migrations/sqlite/004_member_activity.js';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { openWorkerSqliteStore } from '../../src/storage/worker-sqlite-store.js';
import { storeContract } from './store.contract.js';

const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chat-store-')), 'chat.db');

storeContract('sqlite', (options) => openSqliteStore({ file: tmp(), ...options }));

describe('SqliteStore specifics', () => {
  it("keeps each membership's activity at the newest event it may see, as migration 004 computes it", async () => {
    const file = tmp();
    const store = await openSqliteStore({ file, idempotencyWindowMs: 60_000 });
    const [a, b, c, d] = await Promise.all(
      ['ann', 'bob', 'cy', 'dee'].map((n) => store.createUser(n, 'h')),
    );
    const send = (from: string, to: string, content = 'x') =>
      store.appendMessages([{ senderId: from, receiver: to, content }]);
    await send(a!.id, 'bob');
    await send(b!.id, 'ann');
    await send(a!.id, 'ann'); // to oneself
    await store.block(c!.id, a!.id);
    await send(a!.id, 'cy'); // hidden from cy: only ann's activity moves
    await send(c!.id, 'dee');
    const group = await store.changeConversation(
      { kind: 'create', actorId: a!.id, title: 'g', memberIds: [b!.id, c!.id] },
      10,
    );
    if (group.kind !== 'changed') throw new Error('create');
    const [sent] = await store.appendMessages([
      { kind: 'message', senderId: b!.id, conversationId: group.conversationId, content: 'hi' },
    ]);
    if (sent?.kind !== 'stored') throw new Error('send');
    await store.appendMessages([
      { kind: 'edit', senderId: b!.id, messageId: sent.event.id, content: 'hey' },
    ]);
    await store.changeConversation(
      { kind: 'add', actorId: a!.id, conversationId: group.conversationId, memberIds: [d!.id] },
      10,
    );
    await store.changeConversation(
      { kind: 'remove', actorId: a!.id, conversationId: group.conversationId, memberId: c!.id },
      10,
    );
    await store.close();

    const db = new Database(file);
    const rows = () =>
      db
        .prepare(
          `SELECT conversation_id, user_id, last_activity_id AS written,
             coalesce((SELECT max(m.id) FROM messages m WHERE m.conversation_id = cm.conversation_id
               AND (m.hidden_from IS NULL OR m.hidden_from <> cm.user_id)), 0) AS visible
           FROM conversation_members cm ORDER BY conversation_id, user_id`,
        )
        .all() as Array<{ written: number; visible: number }>;
    const written = rows();
    expect(written.length).toBeGreaterThanOrEqual(8);
    for (const r of written) expect(r.written).toBe(r.visible);
    // A direct conversation whose only message is hidden from one member has no activity for them.
    expect(written.filter((r) => r.visible === 0)).toHaveLength(1);
    db.exec('UPDATE conversation_members SET last_activity_id = 0');
    db.exec(BACKFILL_MEMBER_ACTIVITY);
    expect(rows()).toEqual(written);
    db.close();
  });

  it('uses WAL, synchronous=FULL and foreign keys, and reopens an existing database', async () => {
    const file = tmp();
    const store = await openSqliteStore({ file });
    await store.createUser('kim', 'h');
    await store.close();
    const again = await openSqliteStore({ file });
    expect(await again.findUserByName('KIM')).toBeDefined();
    await again.close();
    const db = new Database(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const migrations = db.prepare('SELECT name FROM kysely_migration').all();
    expect(migrations).toEqual([
      { name: '001_initial' },
      { name: '002_conversations' },
      { name: '003_ticket_expiry_member_join_indexes' },
      { name: '004_member_activity' },
    ]);
    db.close();
  });

  it('migrates a database of the previous release forward without losing or renumbering a message', async () => {
    // The schema of the release before conversations (001 only), filled as that release did.
    const file = tmp();
    const kysely = new Kysely<unknown>({
      dialect: new SqliteDialect({ database: new Database(file) }),
    });
    const { error } = await new Migrator({
      db: kysely,
      provider: { getMigrations: async () => ({ '001_initial': initial }) },
    }).migrateToLatest();
    expect(error).toBeUndefined();
    await kysely.destroy();
    const old = new Database(file);
    const t = new Date().toISOString();
    const addUser = old.prepare(
      'INSERT INTO users (username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?)',
    );
    const ann = Number(addUser.run('Ann', 'ann', 'h', t).lastInsertRowid);
    const ben = Number(addUser.run('Ben', 'ben', 'h', t).lastInsertRowid);
    const conv = Number(
      old
        .prepare("INSERT INTO conversations (kind, direct_key, created_at) VALUES ('direct', ?, ?)")
        .run(`${ann}:${ben}`, t).lastInsertRowid,
    );
    for (const u of [ann, ben])
      old
        .prepare(
          'INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?)',
        )
        .run(conv, u, t);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = Number(
        old
          .prepare(
            'INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(conv, i % 2 ? ben : ann, i % 2 ? ann : ben, `old ${i}`, t, `c${i}`).lastInsertRowid,
      );
      old
        .prepare('INSERT INTO inbox (user_id, message_id) VALUES (?, ?), (?, ?)')
        .run(ann, id, ben, id);
      ids.push(id);
    }
    old.close();

    const store = await openSqliteStore({ file });
    const history = await store.history(String(ann), String(ben), undefined, 50);
    expect(history.messages.map((m) => [m.id, m.content, m.sender, m.receiver])).toEqual(
      ids.map((id, i) => [String(id), `old ${i}`, i % 2 ? 'Ben' : 'Ann', i % 2 ? 'Ann' : 'Ben']),
    );
    const stream = await store.stream(String(ben), undefined, 50);
    expect(stream.events.map((e) => e.id)).toEqual(ids.map(String));
    // The old clientIds still deduplicate, and new ids follow the old ones.
    const [dup, fresh] = await store.appendMessages([
      { senderId: String(ann), receiver: 'ben', content: 'again', clientId: 'c0' },
      { senderId: String(ann), receiver: 'ben', content: 'new', clientId: 'n' },
    ]);
    expect(dup).toMatchObject({ kind: 'duplicate', event: { id: String(ids[0]) } });
    expect(Number((fresh as { event: { id: string } }).event.id)).toBeGreaterThan(ids.at(-1)!);
    const [list] = (await store.listConversations(String(ann), { limit: 10, memberPreview: 5 }))
      .conversations;
    expect(list).toMatchObject({ id: String(conv), kind: 'direct', unreadCount: 2 });
    await store.close();
  });

  it('checkpoints on its own thread with backgroundCheckpoints, not inside commits', async () => {
    const file = tmp();
    const store = await openSqliteStore({ file, backgroundCheckpoints: true });
    const db = new Database(file);
    const [a, b] = [await store.createUser('ann', 'h'), await store.createUser('ben', 'h')];
    for (let i = 0; i < 50; i++)
      await store.appendMessages(
        Array.from({ length: 20 }, (_, j) => ({
          senderId: i % 2 ? a.id : b.id,
          receiver: i % 2 ? 'ben' : 'ann',
          content: `m${i}.${j}`,
        })),
      );
    // The writer alone would leave every frame in the WAL (far below 4,000 pages): the
    // checkpointer thread copies them into the database file within a few of its 20 ms turns.
    const deadline = Date.now() + 5000;
    for (;;) {
      const [state] = db.pragma('wal_checkpoint(NOOP)') as Array<{
        log: number;
        checkpointed: number;
      }>;
      if (state && state.log > 0 && state.checkpointed === state.log) break;
      if (Date.now() > deadline) throw new Error(`WAL not checkpointed: ${JSON.stringify(state)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    db.close();
    await store.close();
  });
  // Query plans: sqlite-plans.test.ts, on the store's own statements.

  it('commits the session touches, last-seen updates and tickets of one turn in one transaction', async () => {
    const file = tmp();
    const store = await openSqliteStore({ file });
    const users = [];
    for (let i = 0; i < 40; i++) users.push(await store.createUser(`u${i}`, 'h'));
    const sessions = [];
    for (const u of users)
      sessions.push(
        await store.createSession({
          userId: u.id,
          userAgent: null,
          refreshTokenHash: `r${u.id}`,
          expiresAt: new Date(Date.now() + 86_400_000),
        }),
      );
    const db = new Database(file);
    const walFrames = () => (db.pragma('wal_checkpoint(NOOP)') as Array<{ log: number }>)[0]!.log;
    const at = new Date('2026-11-28T10:00:00.000Z');

    // One at a time (each awaited, so each in a turn of its own): a commit each.
    let before = walFrames();
    for (const s of sessions.slice(0, 20)) await store.touchSession(s.id, at);
    expect(walFrames() - before).toBeGreaterThanOrEqual(20);

    // Made in one turn (a reconnect storm's handshakes): one commit for all of them.
    before = walFrames();
    await Promise.all([
      ...sessions.slice(20).map((s) => store.touchSession(s.id, at)),
      ...users.map((u) => store.setLastSeen(u.id, at)),
    ]);
    expect(walFrames() - before).toBeLessThan(10);
    for (const s of sessions)
      expect((await store.getSession(s.id))?.lastUsedAt).toBe(at.toISOString());
    for (const u of users) expect(await store.getLastSeen(u.id)).toBe(at.toISOString());

    // Tickets too; one redeemed twice in the same turn is returned to the first only.
    const expires = new Date(Date.now() + 30_000);
    before = walFrames();
    await Promise.all(sessions.map((s, i) => store.createTicket(`t${i}`, s.id, expires)));
    expect(walFrames() - before).toBeLessThan(10);
    const redeemed = await Promise.all([store.redeemTicket('t0'), store.redeemTicket('t0')]);
    expect(redeemed).toEqual([sessions[0]!.id, undefined]);

    // An update still queued when the store closes is committed, not dropped.
    const later = new Date('2026-11-28T11:00:00.000Z');
    const pending = store.touchSession(sessions[0]!.id, later);
    await store.close();
    await pending;
    const again = await openSqliteStore({ file });
    expect((await again.getSession(sessions[0]!.id))?.lastUsedAt).toBe(later.toISOString());
    await again.close();
    db.close();
  });

  it('serves the hot queries from indexes', async () => {
    const file = tmp();
    (await openSqliteStore({ file })).close();
    const db = new Database(file);
    const plan = (sql: string) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((r) => (r as { detail: string }).detail)
        .join('; ');
    expect(
      plan(
        'SELECT message_id FROM inbox WHERE user_id = 1 AND message_id > 5 ORDER BY message_id LIMIT 10',
      ),
    ).toMatch(/SEARCH inbox USING PRIMARY KEY/);
    expect(
      plan(
        'SELECT id FROM messages WHERE conversation_id = 1 AND id < 9 ORDER BY id DESC LIMIT 10',
      ),
    ).toMatch(/SEARCH messages USING (COVERING )?INDEX messages_by_conversation/);
    expect(plan("SELECT * FROM users WHERE username_key >= 'a' AND username_key < 'b'")).toMatch(
      /USING INDEX/,
    );
    // The idempotency window's end and the release of expired keys: primary-key seeks only.
    expect(plan('SELECT id, created_at FROM messages WHERE id >= 5 ORDER BY id LIMIT 1')).toMatch(
      /SEARCH messages USING INTEGER PRIMARY KEY/,
    );
    expect(
      plan(
        "UPDATE messages SET client_id = NULL WHERE id > 1 AND id <= 9 AND client_id IS NOT NULL AND created_at < 'x'",
      ),
    ).toMatch(/SEARCH messages USING INTEGER PRIMARY KEY/);
    db.close();
  });
});

storeContract('sqlite on a worker thread', (options) =>
  openWorkerSqliteStore({ file: tmp(), ...options }),
);
