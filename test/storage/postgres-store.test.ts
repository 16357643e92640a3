// The Store contract against PostgreSQL, plus what only PostgreSQL promises: migrations shared by
// nodes, commit order = id order across two pools, indexes. Needs DATABASE_URL=postgres://…
// (scripts/services.sh start); each store gets a fresh schema, dropped at the end.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  openPostgresStore,
  STATEMENTS,
  type PostgresStore,
} from '../../src/storage/postgres-store.js';
import type { Store, StreamEvent, User } from '../../src/storage/store.js';
import { serviceUrl } from '../helpers/services.js';
import { storeContract } from './store.contract.js';

const url = serviceUrl('DATABASE_URL', 'postgres:');

const schemas: string[] = [];
const freshSchema = (): string => {
  const schema = `chat_test_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return schema;
};

/** A plain client on the test database, for looking behind the store. */
async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe('openPostgresStore without a server', () => {
  it('rejects naming the server, never its password', async () => {
    const opening = openPostgresStore({ url: 'postgres://chat:s3cret@127.0.0.1:1/chat' });
    await expect(opening).rejects.toThrow(/^PostgreSQL at postgres:\/\/127\.0\.0\.1:1\/chat: /);
    await expect(opening).rejects.not.toThrow(/s3cret/);
  });
});

describe.skipIf(!url)('PostgresStore', () => {
  const open = (schema: string, extra: { poolSize?: number; migrate?: boolean } = {}) =>
    openPostgresStore({ url: url!, schema, ...extra });

  afterAll(async () => {
    if (schemas.length === 0) return;
    await withClient(async (client) => {
      for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    });
  });

  storeContract('postgres', (options) =>
    openPostgresStore({ url: url!, schema: freshSchema(), ...options }),
  );

  describe('PostgresStore specifics', () => {
    it('records migrations once; a second open of the schema keeps data and re-runs nothing', async () => {
      const schema = freshSchema();
      const store = await open(schema);
      expect(store.description).toMatch(/^postgres:\/\/[^@]*\/\w+\?schema=chat_test_\w+$/);
      await store.createUser('kim', 'h');
      await store.close();
      const applied = () =>
        withClient(
          async (client) =>
            (await client.query(`SELECT name, timestamp FROM ${schema}.kysely_migration`)).rows,
        );
      const first = await applied();
      expect(first.map((r) => r.name)).toEqual([
        '001_initial',
        '002_append_function',
        '003_conversations',
        '004_append_events',
      ]);
      const again = await open(schema);
      expect(await again.findUserByName('KIM')).toMatchObject({ username: 'kim' });
      await again.close();
      expect(await applied()).toEqual(first);
      const unmigrated = await open(schema, { migrate: false });
      expect(await unmigrated.findUserByName('kim')).toBeDefined();
      await unmigrated.close();
    });

    it('lets nodes that start at once on a new schema all migrate it', async () => {
      const schema = freshSchema();
      const stores = await Promise.all([open(schema), open(schema), open(schema)]);
      await stores[0]!.createUser('lee', 'h');
      for (const store of stores) expect(await store.findUserByName('LEE')).toBeDefined();
      await Promise.all(stores.map((s) => s.close()));
    });

    it('keeps commit order = id order for two nodes appending at once; a polling reader misses nothing', async () => {
      const schema = freshSchema();
      const nodes = [await open(schema, { poolSize: 4 }), await open(schema, { poolSize: 4 })];
      const [a, b] = nodes as [PostgresStore, PostgresStore];
      const names = ['u0', 'u1', 'u2', 'u3'];
      const users: User[] = [];
      for (const n of names) users.push(await a.createUser(n, 'h'));
      const reader = users[0]!;

      const writersPerNode = 3;
      const batches = 15;
      const perBatch = 40;
      let writing = true;
      const stored: Array<Extract<StreamEvent, { type: 'message' }>> = [];
      const write = async (store: Store, w: number) => {
        for (let k = 0; k < batches; k++) {
          const batch = Array.from({ length: perBatch }, (_, i) => {
            const from = users[(w + i) % users.length]!;
            return {
              senderId: from.id,
              receiver: names[(w + k + i + 1) % names.length]!,
              content: `${w}/${k}/${i}`,
              clientId: `${w}-${k}-${i}`,
            };
          });
          const results = await store.appendMessages(batch);
          const events = results.map((r) => {
            if (r.kind !== 'stored' || r.event.type !== 'message') throw new Error(r.kind);
            return r.event;
          });
          const ids = events.map((e) => BigInt(e.id));
          // Within a batch, ids follow the batch's order.
          for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
          stored.push(...events);
        }
      };

      // Reads u0's stream by cursor, as a syncing client does, while the writers run.
      const seen: string[] = [];
      const read = async () => {
        let cursor: string | undefined;
        for (;;) {
          const done = !writing;
          const page = await b.stream(reader.id, cursor, 1000);
          for (const m of page.events) {
            if (cursor !== undefined) expect(BigInt(m.id)).toBeGreaterThan(BigInt(cursor));
            seen.push(m.id);
            cursor = m.id;
          }
          if (done && !page.hasMore) return;
        }
      };

      const reading = read();
      const writers = [];
      for (let w = 0; w < writersPerNode * 2; w++) writers.push(write(nodes[w % 2]!, w));
      // Settle everything before asserting, so that no query outlives the test.
      const settled = await Promise.allSettled(writers);
      writing = false;
      settled.push(...(await Promise.allSettled([reading])));
      try {
        for (const s of settled) if (s.status === 'rejected') throw s.reason;
        const ids = stored.map((m) => m.id);
        expect(new Set(ids).size).toBe(writersPerNode * 2 * batches * perBatch);
        // Every message of u0 committed while the reader polled reached it: none was skipped by a
        // cursor that had already passed its id.
        const mine = stored
          .filter((m) => m.sender === 'u0' || m.receiver === 'u0')
          .map((m) => m.id);
        expect(seen.sort()).toEqual([...mine].sort());
        // And every stored message is readable from either node.
        for (const u of users) {
          const all = await a.stream(u.id, undefined, 100_000);
          const expected = stored.filter(
            (m) => m.sender === u.username || m.receiver === u.username,
          );
          expect(all.events.length).toBe(expected.length);
        }
        const byId = new Map(stored.map((m) => [m.id, m]));
        const all = await b.stream(users[1]!.id, undefined, 100_000);
        for (const m of all.events) expect(m).toEqual(byId.get(m.id));
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });

    it("serves every query from indexes (the store's own statements)", async () => {
      const schema = freshSchema();
      await (await open(schema)).close();
      const plans = await withClient(async (client) => {
        await client.query(`SET search_path = ${schema}`);
        // Empty tables: make anything but an index scan look expensive, so a usable index shows.
        await client.query('SET enable_seqscan = off');
        await client.query('SET enable_bitmapscan = off');
        const plan = async (name: keyof typeof STATEMENTS, values: unknown[]) =>
          (await client.query(`EXPLAIN ${STATEMENTS[name]}`, values)).rows
            .map((r) => r['QUERY PLAN'])
            .join('\n');
        const now = new Date().toISOString();
        return {
          stream: await plan('stream', ['1', '5', 10]),
          lastStreamId: await plan('lastStreamId', ['1']),
          history: await plan('history', ['1', '9', '0', '2', 10]),
          search: await plan('searchUsers', ['a', 'a\u{10ffff}', 10]),
          users: await plan('usersByKeyOrId', [['a', 'b'], ['1']]),
          eventsById: await plan('eventsById', [['1', '2']]),
          directConversation: await plan('directConversation', ['1:2']),
          groupState: await plan('groupState', ['1']),
          conversationsOf: await plan('conversationsOf', ['1', '100', 20]),
          conversationOf: await plan('conversationOf', ['1', '2']),
          membersPreview: await plan('membersPreview', [['1', '2'], 5]),
          membership: await plan('membership', ['1', '2']),
          memberIds: await plan('memberIds', ['1']),
          contacts: await plan('contacts', ['1']),
          advanceRead: await plan('advanceRead', [['1'], ['2'], ['3']]),
          advanceDelivered: await plan('advanceDelivered', [['1'], ['2'], ['3']]),
          listBlocks: await plan('listBlocks', ['1']),
          blockedBetween: await plan('blockedBetween', ['1', ['2', '3']]),
          deleteBlock: await plan('deleteBlock', ['1', '2']),
          settings: await plan('settings', ['1']),
          setSettings: await plan('setSettings', ['1', true, null]),
          lastSeen: await plan('lastSeen', ['1']),
          setLastSeen: await plan('setLastSeen', [now, '1']),
          renameGroup: await plan('renameGroup', ['t', '1']),
          setRole: await plan('setRole', ['admin', '1', '2']),
        };
      });
      for (const [name, p] of Object.entries(plans))
        expect(p, `${name}:\n${p}`).not.toMatch(/Seq Scan/);
      expect(plans.stream).toMatch(/Index Only Scan using inbox_pkey/);
      expect(plans.stream).not.toMatch(/Sort/);
      expect(plans.lastStreamId).toMatch(/Index Only Scan Backward using inbox_pkey/);
      expect(plans.history).toMatch(/Index Scan Backward using messages_by_conversation/);
      expect(plans.history).not.toMatch(/Sort/);
      expect(plans.search).toMatch(/Index Scan using users_username_key_unique/);
      expect(plans.search).not.toMatch(/Sort/);
      // The list: the caller's memberships by members_by_user; per conversation its newest event,
      // newest message and unread count from messages_by_conversation, read backwards or in range.
      expect(plans.conversationsOf).toMatch(/using members_by_user/);
      expect(plans.conversationsOf).toMatch(/Index Scan Backward using messages_by_conversation/);
      expect(plans.membersPreview).toMatch(/using members_by_join/);
      expect(plans.membersPreview).not.toMatch(/Sort Key: cm\./);
    });

    // append_events runs its statements with PL/pgSQL's cached (generic) plans, which EXPLAIN
    // cannot show: the transaction's table counters tell instead whether anything scanned.
    it('appends every kind of event without scanning a table', async () => {
      const schema = freshSchema();
      const store = await open(schema);
      const ann = await store.createUser('ann', 'h');
      const ben = await store.createUser('ben', 'h');
      const cy = await store.createUser('cy', 'h');
      const group = await store.changeConversation(
        { kind: 'create', actorId: ann.id, title: 'g', memberIds: [ben.id, cy.id] },
        10,
      );
      if (group.kind !== 'changed') throw new Error(group.kind);
      await store.close();
      const day = 24 * 3600_000;
      const now = Date.now();
      const total = 30_000;
      const tables = ['blocks', 'conversation_members', 'conversations', 'messages', 'users'];
      await withClient(async (client) => {
        await client.query(`SET search_path = ${schema}`);
        // 20k conversations of 3 members each; 30k messages of ann, keys c1..c30000, the first
        // half out of the window; 20k blocks.
        await client.query(`INSERT INTO conversations (kind, direct_key, created_at)
          SELECT 'direct', 'x:' || g, now() FROM generate_series(1, 20000) g`);
        await client.query(
          `INSERT INTO conversation_members (conversation_id, user_id, joined_at)
          SELECT c.id, u.id, now() FROM conversations c, users u WHERE c.direct_key LIKE 'x:%'`,
        );
        await client.query(
          `INSERT INTO users (username, username_key, password_hash, created_at)
          SELECT 'u' || g, 'u' || g, 'h', now() FROM generate_series(1, 20000) g`,
        );
        await client.query(
          `INSERT INTO blocks (blocker_id, blocked_id, created_at)
          SELECT u.id, $1, now() FROM users u WHERE u.username LIKE 'u%'`,
          [cy.id],
        );
        await client.query(
          `INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id)
          SELECT $5, $1, $2, 'old', $3::timestamptz - (g <= $4 / 2)::int * interval '2 days',
            'c' || g
          FROM generate_series(1, $4) g`,
          [ann.id, ben.id, new Date(now).toISOString(), total, group.conversationId],
        );
        await client.query('ANALYZE');
        // Ann's newest message, in the group (its key is not among those the calls use).
        const target = (
          await client.query<{ id: string }>(
            'SELECT id FROM messages WHERE sender_id = $1 AND client_id = $2',
            [ann.id, `c${total}`],
          )
        ).rows[0]!.id;

        await client.query('BEGIN');
        const scans = async () =>
          (
            await client.query<{ relname: string; seq_scan: string; idx_scan: string }>(
              `SELECT relname, seq_scan, idx_scan FROM pg_stat_xact_user_tables
              WHERE schemaname = $1 AND relname = ANY($2) ORDER BY relname`,
              [schema, tables],
            )
          ).rows.map((r) => ({
            table: r.relname,
            seq: Number(r.seq_scan),
            idx: Number(r.idx_scan),
          }));
        // Counted from here: the view may still hold counts of earlier statements not yet flushed.
        const before = await scans();
        expect(before.map((t) => t.table)).toEqual(tables);
        for (let call = 1; call <= 6; call++) {
          // By receiver: an expired key (released and reused), a held one (duplicate), a new one,
          // none; the conversation never passed as known, so it is looked up each time. To the
          // group; an edit (twice: a repeat) and, on the last call, a deletion.
          const events = [
            ['message', 'ben', null, ann.id, null, 'a', `c${call}`, null],
            ['message', 'ben', null, ann.id, null, 'b', `c${total - call}`, null],
            ['message', 'ben', null, ann.id, null, 'c', `new${call}`, null],
            ['message', 'ben', null, ann.id, null, 'd', null, null],
            ['message', null, group.conversationId, ben.id, null, 'e', `g${call}`, null],
            ['edit', null, null, ann.id, target, `edit${call}`, `e${call}`, null],
            ['edit', null, null, ann.id, target, `edit${call}`, `e${call}`, 6],
            ['message', null, group.conversationId, cy.id, null, 'f', null, null],
            ...(call === 6 ? [['delete', null, null, ann.id, target, '', null, null]] : []),
          ] as const;
          const column = (i: number) => events.map((e) => e[i]);
          const { rows } = await client.query(STATEMENTS.appendEvents, [
            1,
            1,
            new Date(now).toISOString(),
            new Date(now - day).toISOString(),
            column(0),
            column(1).map((r) => (r === null ? null : `${ann.id}:${ben.id}`)),
            column(2),
            column(3),
            column(1).map((r) => (r === null ? null : ben.id)),
            column(4),
            column(5),
            column(6),
            column(7),
          ]);
          const byOrd = rows.sort((x, y) => x.ord - y.ord);
          expect(byOrd.map((r) => [r.ord, r.result, r.content])).toEqual([
            [1, 'stored', null],
            [2, 'duplicate', 'old'],
            [3, 'stored', null],
            [4, 'stored', null],
            [5, 'stored', null],
            [6, 'stored', null],
            [7, 'repeat', null],
            [8, 'stored', null],
            ...(call === 6 ? [[9, 'stored', null]] : []),
          ]);
          expect(byOrd[4]!.recipients.sort()).toEqual([ann.id, ben.id, cy.id].sort());
          expect(byOrd[6]!.duplicate_of).toBe(6);
        }
        // Direct messages by receiver only: the fast path, which finds conversations and blocks
        // in the insert.
        for (let call = 7; call <= 12; call++) {
          const { rows } = await client.query(STATEMENTS.appendEvents, [
            1,
            1,
            new Date(now).toISOString(),
            new Date(now - day).toISOString(),
            Array(4).fill('message'),
            Array(4).fill(`${ann.id}:${ben.id}`),
            Array(4).fill(null),
            Array(4).fill(ann.id),
            Array(4).fill(ben.id),
            Array(4).fill(null),
            ['a', 'b', 'c', 'd'],
            [`c${call}`, `c${total - call}`, `new${call}`, null],
            Array(4).fill(null),
          ]);
          const byOrd = rows.sort((x, y) => x.ord - y.ord);
          expect(byOrd.map((r) => [r.ord, r.result, r.content])).toEqual([
            [1, 'stored', null],
            [2, 'duplicate', 'old'],
            [3, 'stored', null],
            [4, 'stored', null],
          ]);
        }
        const after = await scans();
        await client.query('ROLLBACK');
        after.forEach((t, i) => {
          expect(t.seq - before[i]!.seq, t.table).toBe(0);
          expect(t.idx - before[i]!.idx, t.table).toBeGreaterThan(0);
        });
      });
    });

    it('refuses a batch with an unknown sender, as a foreign key would, and stores none of it', async () => {
      const schema = freshSchema();
      const store = await open(schema);
      try {
        const a = await store.createUser('max', 'h');
        await expect(
          store.appendMessages([
            { senderId: a.id, receiver: 'max', content: 'fine' },
            { senderId: '999999', receiver: 'max', content: 'ghost' },
          ]),
        ).rejects.toThrow(/unknown sender/);
        expect(await store.stream(a.id, undefined, 10)).toEqual({ events: [], hasMore: false });
      } finally {
        await store.close();
      }
    });

    it('runs every connection in its schema with synchronous_commit on', async () => {
      const schema = freshSchema();
      const store = await open(schema);
      try {
        const settings = await (store as unknown as { pool: pg.Pool }).pool.query(
          "SELECT current_setting('search_path') AS path, current_setting('synchronous_commit') AS sync",
        );
        expect(settings.rows).toEqual([{ path: schema, sync: 'on' }]);
      } finally {
        await store.close();
      }
    });

    it('describes the server without credentials', async () => {
      const withUser = new URL(url!);
      withUser.username = 'someone';
      withUser.password = 'secret';
      const schema = freshSchema();
      const store = await openPostgresStore({ url: url!, schema });
      await store.close();
      // Only the description is built from withUser; no connection is needed for that.
      const described = await openPostgresStore({
        url: withUser.toString(),
        schema,
        migrate: false,
      });
      expect(described.description).not.toMatch(/someone|secret/);
      await described.close();
    });
  });
});
