// The Store contract against PostgreSQL, plus what only PostgreSQL promises: migrations shared by
// nodes, commit order = id order across two pools, indexes. Needs DATABASE_URL=postgres://…
// (scripts/services.sh start); each store gets a fresh schema, dropped at the end.
import { randomBytes } from 'node:crypto';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import * as initial from '../../src/storage/migrations/postgres/001_initial.js';
import * as appendFunction from '../../src/storage/migrations/postgres/002_append_function.js';
import {
  openPostgresStore,
  STATEMENTS,
  type PostgresStore,
} from '../../src/storage/postgres-store.js';
import type {
  AppendResult,
  ConversationChange,
  NewEvent,
  NewMessage,
  Store,
  StreamEvent,
  User,
} from '../../src/storage/store.js';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
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

/**
 * One session of everything the conversations Store does, with the corner cases of a batch that
 * only a batch has (a clientId shared across kinds, a repeat whose first was refused, a deletion
 * then an edit of one message), as a list of labelled results: run on SqliteStore (the reference)
 * and on PostgresStore, the lists must be equal.
 */
async function scenario(store: Store, clock: { t: number }): Promise<Array<[string, unknown]>> {
  const log: Array<[string, unknown]> = [];
  const note = (label: string, value: unknown) => log.push([label, value]);
  const tick = () => (clock.t += 1000);
  const append = async (label: string, batch: Array<NewEvent | NewMessage>) => {
    tick();
    const results = await store.appendMessages(batch);
    note(label, results);
    return results;
  };
  const change = async (label: string, c: ConversationChange, max = 4) => {
    tick();
    const r = await store.changeConversation(c, max);
    note(label, r);
    return r;
  };
  const idOf = (r: AppendResult | undefined) => {
    if (r?.kind !== 'stored') throw new Error(`not stored: ${JSON.stringify(r)}`);
    return r.event;
  };
  const [a, b, c, d, e] = [
    await store.createUser('Ada', 'h'),
    await store.createUser('bea', 'h'),
    await store.createUser('cy', 'h'),
    await store.createUser('dee', 'h'),
    await store.createUser('eve', 'h'),
  ] as [User, User, User, User, User];
  const users = [a, b, c, d, e];

  const dms = await append('direct messages', [
    { senderId: a.id, receiver: 'BEA', content: 'hi bea', clientId: 'k1' },
    { senderId: a.id, receiver: 'ada', content: 'note to self' },
    { senderId: a.id, receiver: 'nobody', content: 'lost', clientId: 'k2' },
    { senderId: a.id, receiver: 'bea', content: 'repeat', clientId: 'k1' },
    { senderId: b.id, receiver: 'ada', content: 'hi ada', clientId: 'k1' },
    { senderId: a.id, receiver: 'cy', content: 'hi cy', clientId: 'k2' },
    { kind: 'message', senderId: c.id, receiver: 'Ada', content: 'hi back' },
  ]);
  const direct = idOf(dms[0]).conversationId;
  const self = idOf(dms[1]).conversationId;

  const g = await change('create', {
    kind: 'create',
    actorId: a.id,
    title: 'team',
    memberIds: [b.id, c.id, b.id, a.id],
  });
  if (g.kind !== 'changed') throw new Error('no group');
  const gid = g.conversationId;
  const group = (actorId: string) => ({ actorId, conversationId: gid });
  await change('create over the limit', {
    kind: 'create',
    actorId: a.id,
    title: 'big',
    memberIds: [b.id, c.id, d.id, e.id],
  });
  await change('rename to its title', { kind: 'rename', ...group(a.id), title: 'team' });
  await change('rename by a member', { kind: 'rename', ...group(b.id), title: 'x' });
  await change('rename', { kind: 'rename', ...group(a.id), title: 'crew' });
  await change('rename by an outsider', { kind: 'rename', ...group(e.id), title: 'x' });
  await change('rename a direct one', {
    kind: 'rename',
    actorId: a.id,
    conversationId: direct,
    title: 'x',
  });
  await change('rename none', { kind: 'rename', actorId: a.id, conversationId: '999', title: 'x' });
  await change('add a member again', { kind: 'add', ...group(a.id), memberIds: [b.id] });
  await change('add over the limit', { kind: 'add', ...group(a.id), memberIds: [d.id, e.id] });
  await change('add', { kind: 'add', ...group(a.id), memberIds: [d.id, b.id] });
  await change('add by a member', { kind: 'add', ...group(b.id), memberIds: [e.id] });
  await change('promote', { kind: 'role', ...group(a.id), memberId: b.id, role: 'admin' });
  await change('promote again', { kind: 'role', ...group(a.id), memberId: b.id, role: 'admin' });
  await change('role of an outsider', {
    kind: 'role',
    ...group(a.id),
    memberId: e.id,
    role: 'admin',
  });
  await change('remove by a member', { kind: 'remove', ...group(c.id), memberId: d.id });
  await change('demote oneself', { kind: 'role', ...group(a.id), memberId: a.id, role: 'member' });
  await change('demote the last admin', {
    kind: 'role',
    ...group(b.id),
    memberId: b.id,
    role: 'member',
  });
  await change('the last admin leaves', { kind: 'remove', ...group(b.id), memberId: b.id });
  const untitled = await change('create untitled', {
    kind: 'create',
    actorId: e.id,
    title: null,
    memberIds: [],
  });
  if (untitled.kind !== 'changed') throw new Error('no untitled group');
  await change('name it', {
    kind: 'rename',
    actorId: e.id,
    conversationId: untitled.conversationId,
    title: 'named',
  });

  const sent = await append('group messages', [
    { kind: 'message', senderId: c.id, conversationId: gid, content: 'from cy', clientId: 'g1' },
    { kind: 'message', senderId: e.id, conversationId: gid, content: 'outsider', clientId: 'g1' },
    { kind: 'message', senderId: c.id, conversationId: '999999', content: 'nowhere' },
    { kind: 'message', senderId: c.id, conversationId: gid, content: 'repeat', clientId: 'g1' },
    { kind: 'message', senderId: e.id, conversationId: gid, content: 'refused', clientId: 'g2' },
    { kind: 'message', senderId: e.id, receiver: 'cy', content: 'same key', clientId: 'g2' },
    { kind: 'message', senderId: d.id, conversationId: gid, content: 'from dee' },
    { kind: 'message', senderId: b.id, conversationId: direct, content: 'by id' },
    { kind: 'message', senderId: a.id, conversationId: self, content: 'self by id' },
    { kind: 'message', senderId: c.id, conversationId: direct, content: 'not mine' },
  ]);
  const m1 = idOf(sent[0]).id;
  const fromDee = idOf(sent[6]).id;

  await append('edits and deletions', [
    { kind: 'edit', senderId: c.id, messageId: m1, content: 'edited', clientId: 'e1' },
    { kind: 'edit', senderId: c.id, messageId: m1, content: 'again', clientId: 'e1' },
    { kind: 'edit', senderId: a.id, messageId: m1, content: 'not mine' },
    { kind: 'edit', senderId: c.id, messageId: m1, content: 'second edit', clientId: 'e2' },
    { kind: 'delete', senderId: c.id, messageId: m1, clientId: 'd1' },
    { kind: 'edit', senderId: c.id, messageId: m1, content: 'after the deletion', clientId: 'e3' },
    { kind: 'delete', senderId: c.id, messageId: m1, clientId: 'd1' },
    { kind: 'message', senderId: c.id, conversationId: gid, content: 'key of e3', clientId: 'e3' },
    { kind: 'edit', senderId: c.id, messageId: '999999', content: 'none' },
    { kind: 'edit', senderId: a.id, messageId: g.event.id, content: 'a change' },
    { kind: 'edit', senderId: e.id, messageId: fromDee, content: 'outsider' },
    { kind: 'edit', senderId: d.id, messageId: fromDee, content: 'dee edits', clientId: 'e4' },
    { kind: 'delete', senderId: d.id, messageId: fromDee, clientId: 'e4' },
  ]);
  await append('edit again with a key of an edit of a deleted message', [
    { kind: 'edit', senderId: c.id, messageId: m1, content: 'late', clientId: 'e1' },
    { kind: 'message', senderId: c.id, conversationId: gid, content: 'reuses d1', clientId: 'd1' },
  ]);

  // Dee leaves and comes back: her earlier message is before her new join.
  await change('dee leaves', { kind: 'remove', ...group(d.id), memberId: d.id });
  await append('dee, gone', [
    { kind: 'message', senderId: d.id, conversationId: gid, content: 'gone' },
    { kind: 'delete', senderId: d.id, messageId: fromDee },
  ]);
  note('dee, gone: history', await store.conversationHistory(d.id, gid, undefined, 10));
  await change('dee back', { kind: 'add', ...group(b.id), memberIds: [d.id] });
  await append('dee, back', [
    { kind: 'delete', senderId: d.id, messageId: fromDee },
    { kind: 'message', senderId: d.id, conversationId: gid, content: 'back' },
  ]);

  // Blocks: bea blocks Ada.
  tick();
  await store.block(b.id, a.id);
  await store.block(b.id, a.id);
  await store.block(c.id, b.id);
  const hidden = await append('while blocked', [
    { senderId: a.id, receiver: 'bea', content: 'hidden by receiver' },
    { kind: 'message', senderId: a.id, conversationId: direct, content: 'hidden by id' },
    { kind: 'message', senderId: b.id, receiver: 'ada', content: 'the blocker writes' },
    { kind: 'message', senderId: a.id, conversationId: gid, content: 'group, not hidden' },
  ]);
  await append('edits while blocked', [
    { kind: 'edit', senderId: a.id, messageId: idOf(hidden[0]).id, content: 'hidden edit' },
    { kind: 'delete', senderId: b.id, messageId: idOf(hidden[1]).id },
    { kind: 'delete', senderId: a.id, messageId: idOf(hidden[1]).id },
  ]);
  note('blocks of bea', await store.listBlocks(b.id));
  note('blocked between', [...(await store.blockedBetween(b.id, [a.id, c.id, d.id]))].sort());
  tick();
  await store.unblock(b.id, a.id);
  note('blocks of bea after', await store.listBlocks(b.id));
  await append('after unblocking', [{ senderId: a.id, receiver: 'bea', content: 'seen again' }]);

  // Watermarks.
  const newest = (await store.lastStreamId(b.id))!;
  const mark = (userId: string, conversationId: string, upTo: string) => ({
    userId,
    conversationId,
    upTo,
  });
  note(
    'read',
    await store.advanceWatermarks('read', [
      mark(b.id, gid, m1),
      mark(c.id, gid, '99999999'),
      mark(e.id, gid, m1),
      mark(b.id, direct, idOf(dms[0]).id),
    ]),
  );
  note('read back', await store.advanceWatermarks('read', [mark(b.id, gid, '1')]));
  note('delivered', await store.advanceWatermarks('delivered', [mark(b.id, gid, newest)]));

  // What each user sees.
  for (const u of users) {
    const stream = await store.stream(u.id, undefined, 100);
    note(`${u.username}: stream`, stream);
    const fifth = stream.events[4]?.id;
    if (fifth) note(`${u.username}: stream after the fifth`, await store.stream(u.id, fifth, 3));
    note(`${u.username}: last id`, await store.lastStreamId(u.id));
    note(`${u.username}: contacts`, (await store.contactsOf(u.id)).sort());
    const first = await store.listConversations(u.id, { limit: 2, memberPreview: 2 });
    note(`${u.username}: conversations`, first);
    const last = first.conversations.at(-1);
    if (last)
      note(
        `${u.username}: conversations before ${last.lastActivityId}`,
        await store.listConversations(u.id, {
          limit: 5,
          before: last.lastActivityId,
          memberPreview: 5,
        }),
      );
    for (const id of [gid, direct, self]) {
      note(`${u.username}: ${id}`, await store.getConversation(u.id, id, 3));
      note(`${u.username}: ${id} history`, await store.conversationHistory(u.id, id, undefined, 4));
      note(`${u.username}: ${id} members`, await store.membersOf(id, u.id));
    }
    for (const peer of users) {
      note(
        `${u.username}/${peer.username}: history`,
        await store.history(u.id, peer.id, undefined, 3),
      );
      note(
        `${u.username}/${peer.username}: direct`,
        await store.directConversationId(u.id, peer.id),
      );
    }
  }

  // Settings and last seen.
  note('settings', await store.getSettings(a.id));
  note('set read receipts', await store.setSettings(a.id, { readReceipts: false }));
  note('set last seen', await store.setSettings(a.id, { showLastSeen: false }));
  note('set both', await store.setSettings(a.id, { readReceipts: true }));
  note('settings after', await store.getSettings(a.id));
  note('last seen', await store.getLastSeen(a.id));
  await store.setLastSeen(a.id, new Date(clock.t));
  note('last seen after', await store.getLastSeen(a.id));

  // A day later the keys are free again.
  clock.t += 25 * 3600_000;
  await store.prune();
  await append('a day later', [
    { senderId: a.id, receiver: 'bea', content: 'k1 again', clientId: 'k1' },
    { kind: 'message', senderId: c.id, conversationId: gid, content: 'g1 again', clientId: 'g1' },
    { kind: 'edit', senderId: c.id, messageId: m1, content: 'deleted still', clientId: 'e2' },
  ]);
  return log;
}

/** Fields that hold message (event) ids, wherever they are; a Conversation's `id` is not one. */
const EVENT_ID_FIELDS = ['messageId', 'lastActivityId', 'upTo', 'deliveredUpTo', 'readUpTo'];

/**
 * The log with every event id replaced by its rank among the log's event ids. Ids only promise
 * to increase in commit order: SQLite's AUTOINCREMENT spends one on an insert that ON CONFLICT
 * DO NOTHING drops, PostgreSQL's sequence does not, so equal histories can differ in values.
 */
function rankEventIds(log: Array<[string, unknown]>): Array<[string, unknown]> {
  const ids = new Set<string>();
  const isEvent = (o: Record<string, unknown>) => 'createdAt' in o && 'conversationId' in o;
  const walk = (v: unknown, visit: (o: Record<string, unknown>, key: string) => void): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, visit));
    else if (v instanceof Set) [...v].forEach((x) => walk(x, visit));
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const key of Object.keys(o)) {
        if (
          typeof o[key] === 'string' &&
          (EVENT_ID_FIELDS.includes(key) || (key === 'id' && isEvent(o)))
        )
          visit(o, key);
        else walk(o[key], visit);
      }
    }
  };
  const copy = structuredClone(log);
  for (const [label, value] of copy) {
    walk(value, (o, key) => ids.add(o[key] as string));
    if (label.endsWith('last id') && typeof value === 'string') ids.add(value);
  }
  const rank = new Map(
    [...ids].sort((x, y) => Number(x) - Number(y)).map((id, i) => [id, `#${i + 1}`]),
  );
  return copy.map(([label, value]) => {
    walk(value, (o, key) => (o[key] = rank.get(o[key] as string) ?? o[key]));
    const ranked = label.endsWith('last id') && typeof value === 'string' ? rank.get(value) : value;
    return [label.replace(/before (\d+)/, (_, id: string) => `before ${rank.get(id)}`), ranked];
  });
}

type Planned = Exclude<keyof typeof STATEMENTS, 'appendEvents'>;

/**
 * Parameters of every statement for the plan tests, named after the rows of PLAN_FILL (user 42 is
 * in direct conversations 41 and 42 and in groups; 3000 is the first group): a statement the store
 * adds and this lacks fails to compile. append_events is a function call, whose plan EXPLAIN cannot
 * show: a test counts its table scans instead.
 */
const planParams = (now: string): Record<Planned, unknown[]> => ({
  insertUser: ['Zed', 'zed', 'h', now],
  userByKey: ['u42'],
  userById: ['42'],
  searchUsers: ['u4', 'u4\u{10ffff}', 20],
  usersByKeyOrId: [['u1', 'u2'], ['42']],
  setPassword: ['h', '42'],
  insertSession: ['snew', '42', now, 'agent', now, 'rnew'],
  refreshForUpdate: ['r42'],
  spendRefresh: [now, 'r42'],
  insertRefresh: ['rnew', 's42'],
  extendSession: [now, 's42'],
  sessionById: ['s42'],
  liveSessions: ['42', now],
  touchSession: [now, 's42'],
  revokeSession: [now, 's42'],
  revokeOthers: [now, '42', 's42'],
  insertTicket: ['tnew', 's42', now],
  redeemTicket: ['t42'],
  directConversation: ['42:43'],
  history: ['42', '9223372036854775807', '0', '42', 51],
  stream: ['42', '0', 101],
  lastStreamId: ['42'],
  eventsById: [['1', '2']],
  appendLock: [1, 2],
  groupState: ['3000'],
  insertGroup: ['title', '42', now],
  renameGroup: ['title', '3000'],
  setRole: ['admin', '3000', '42'],
  conversationEvent: ['3000', '42', now, '{}', ['2'], ['member'], '3'],
  conversationsOf: ['42', '9223372036854775807', 21],
  conversationOf: ['42', '42'],
  membersPreview: [['42', '3000'], 20],
  membership: ['3000', '42'],
  memberIds: ['3000'],
  contacts: ['42'],
  advanceRead: [['42'], ['42'], ['30000']],
  advanceDelivered: [['42'], ['42'], ['30000']],
  insertBlock: ['42', '43', now],
  deleteBlock: ['42', '43'],
  listBlocks: ['42'],
  blockedBetween: ['42', ['43', '44']],
  settings: ['42'],
  setSettings: ['42', true, null],
  setLastSeen: [now, '42'],
  lastSeen: ['42'],
  pruneTickets: [now],
  maxMessageId: [],
  firstAtOrAfter: ['20000'],
  releaseClientIds: ['0', '5000', now],
  ping: [],
});

/**
 * As test/storage/sqlite-plans.test.ts fills SQLite: 3,000 users, 2,999 direct conversations and
 * 50 groups of 20, 45,000 events in their members' inboxes (some hidden by a block), 6,000
 * sessions with refresh tokens, 2,000 tickets expiring over the next hour, 1,000 blocks.
 */
const PLAN_FILL = `
INSERT INTO users (username, username_key, password_hash, created_at)
  SELECT 'U' || n, 'u' || n, 'h', now() FROM generate_series(1, 3000) n;
INSERT INTO conversations (kind, direct_key, created_at)
  SELECT 'direct', n || ':' || (n + 1), now() FROM generate_series(1, 2999) n;
INSERT INTO conversation_members (conversation_id, user_id, joined_at)
  SELECT id, id, now() FROM conversations UNION ALL SELECT id, id + 1, now() FROM conversations;
INSERT INTO conversations (kind, title, created_by, created_at)
  SELECT 'group', 'g' || n, n, now() FROM generate_series(1, 50) n;
INSERT INTO conversation_members (conversation_id, user_id, joined_at, role, joined_after)
  SELECT c.id, (c.id * 7 + g * 131) % 3000 + 1, now(),
    CASE g WHEN 0 THEN 'admin' ELSE 'member' END, g * 10
  FROM conversations c, generate_series(0, 19) g WHERE c.kind = 'group';
INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id,
    hidden_from)
  SELECT n % 2999 + 1, n % 2999 + 1 + n % 2, n % 2999 + 2 - n % 2, 'hello',
    now() - interval '1 day' + n * interval '1 second', 'c' || n,
    CASE WHEN n % 97 = 0 THEN n % 2999 + 2 - n % 2 END
  FROM generate_series(1, 40000) n;
INSERT INTO messages (conversation_id, sender_id, content, created_at)
  SELECT 2999 + n % 50 + 1, 42, 'hi', now() FROM generate_series(1, 5000) n;
INSERT INTO inbox (user_id, message_id)
  SELECT DISTINCT cm.user_id, m.id FROM messages m
  JOIN conversation_members cm ON cm.conversation_id = m.conversation_id
  WHERE m.hidden_from IS NULL OR m.hidden_from <> cm.user_id;
INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at)
  SELECT 's' || n, n % 3000 + 1, now(), now() + interval '1 day',
    CASE WHEN n % 5 = 0 THEN now() END
  FROM generate_series(1, 6000) n;
INSERT INTO refresh_tokens (token_hash, session_id, used_at)
  SELECT 'r' || n, 's' || n, NULL FROM generate_series(1, 6000) n
  UNION ALL SELECT 'q' || n, 's' || n, now() FROM generate_series(1, 6000) n;
INSERT INTO ws_tickets (ticket_hash, session_id, expires_at)
  SELECT 't' || n, 's' || n, now() + (n - 100) * interval '2 seconds'
  FROM generate_series(1, 2000) n;
INSERT INTO blocks (blocker_id, blocked_id, created_at)
  SELECT n * 3 % 3000 + 1, n * 7 % 3000 + 1, now() FROM generate_series(1, 1000) n
  WHERE n * 3 % 3000 <> n * 7 % 3000;
ANALYZE;`;

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
    it('does what SqliteStore does, result for result, over a session of every kind of write', async () => {
      const start = Date.parse('2026-03-01T00:00:00.000Z');
      const run = async (store: Store) => {
        const clock = { t: start };
        (store as unknown as { now: () => Date }).now = () => new Date(clock.t);
        try {
          return await scenario(store, clock);
        } finally {
          await store.close();
        }
      };
      const reference = rankEventIds(await run(await openSqliteStore({ file: ':memory:' })));
      const postgres = rankEventIds(await run(await open(freshSchema())));
      reference.forEach(([label, expected], i) => {
        expect(postgres[i]?.[0]).toBe(label);
        expect(postgres[i]![1], label).toEqual(expected);
      });
      expect(postgres).toHaveLength(reference.length);
    });

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
        '005_ticket_expiry_index',
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
      const params = planParams(new Date().toISOString());
      expect([...Object.keys(params), 'appendEvents'].sort()).toEqual(
        Object.keys(STATEMENTS).sort(),
      );
      const plans = await withClient(async (client) => {
        await client.query(`SET search_path = ${schema}`);
        // Empty tables: make anything but an index scan look expensive, so a usable index shows.
        await client.query('SET enable_seqscan = off');
        await client.query('SET enable_bitmapscan = off');
        const found: Record<string, string> = {};
        for (const [name, values] of Object.entries(params))
          found[name] = (await client.query(`EXPLAIN ${STATEMENTS[name as Planned]}`, values)).rows
            .map((r) => r['QUERY PLAN'])
            .join('\n');
        return found as Record<Planned, string>;
      });
      for (const [name, p] of Object.entries(plans))
        expect(p, `${name}:\n${p}`).not.toMatch(/Seq Scan/);
      // Sync and history: one index range each, in index order.
      expect(plans.stream).toMatch(/Index Only Scan using inbox_pkey/);
      expect(plans.stream).not.toMatch(/Sort/);
      expect(plans.lastStreamId).toMatch(/Index Only Scan Backward using inbox_pkey/);
      expect(plans.history).toMatch(/Index Scan Backward using messages_by_conversation/);
      expect(plans.history).not.toMatch(/Sort/);
      expect(plans.searchUsers).toMatch(/Index Scan using users_username_key_unique/);
      expect(plans.searchUsers).not.toMatch(/Sort/);
      // The list: the caller's memberships by members_by_user; per conversation its newest event,
      // newest message and unread count from messages_by_conversation, read backwards or in range.
      expect(plans.conversationsOf).toMatch(/using members_by_user/);
      expect(plans.conversationsOf).toMatch(/Index Scan Backward using messages_by_conversation/);
      expect(plans.membersPreview).toMatch(/using members_by_join/);
      expect(plans.membersPreview).not.toMatch(/Sort Key: cm\./);
      // Login, refresh-token rotation and tickets: by their keys.
      expect(plans.userByKey).toMatch(/using users_username_key_unique/);
      expect(plans.refreshForUpdate).toMatch(/using refresh_tokens_pkey/);
      expect(plans.refreshForUpdate).toMatch(/using sessions_pkey/);
      expect(plans.redeemTicket).toMatch(/using ws_tickets_pkey/);
      expect(plans.liveSessions).toMatch(/using sessions_by_user/);
      // Expiry (prune): expired tickets by their expiry (migration 005), the idempotency window's
      // end and the release of its keys by primary key.
      expect(plans.pruneTickets).toMatch(/using ws_tickets_by_expiry/);
      expect(plans.maxMessageId).toMatch(/Index Only Scan Backward using messages_pkey/);
      expect(plans.firstAtOrAfter).toMatch(/Index Scan using messages_pkey/);
      expect(plans.releaseClientIds).toMatch(/Index Scan using messages_pkey/);
    });

    // The same statements as the planner sees them with statistics of a filled schema, as run
    // (the pool prepares each statement by name: a custom plan for the given values, and after
    // five runs on one connection possibly the generic plan, the same for any values).
    it('serves every query from indexes on a filled schema after ANALYZE, custom and generic plans', async () => {
      const schema = freshSchema();
      await (await open(schema)).close();
      const params = planParams(new Date().toISOString());
      const found = await withClient(async (client) => {
        await client.query(`SET search_path = ${schema}`);
        await client.query(PLAN_FILL);
        const literal = (v: unknown): string =>
          v === null
            ? 'NULL'
            : Array.isArray(v)
              ? client.escapeLiteral(`{${v.map((x) => `"${String(x)}"`).join(',')}}`)
              : typeof v === 'string'
                ? client.escapeLiteral(v)
                : String(v);
        const lines = (rows: Array<Record<string, string>>) =>
          rows.map((r) => r['QUERY PLAN']!).join('\n');
        const plans: Array<{ name: string; mode: string; plan: string }> = [];
        for (const [name, values] of Object.entries(params)) {
          const text = STATEMENTS[name as Planned];
          plans.push({
            name,
            mode: 'custom',
            plan: lines((await client.query(`EXPLAIN ${text}`, values)).rows),
          });
          await client.query(`PREPARE planned AS ${text}`);
          await client.query('SET plan_cache_mode = force_generic_plan');
          const args = values.length === 0 ? '' : `(${values.map(literal).join(', ')})`;
          plans.push({
            name,
            mode: 'generic',
            plan: lines((await client.query(`EXPLAIN EXECUTE planned${args}`)).rows),
          });
          await client.query('RESET plan_cache_mode');
          await client.query('DEALLOCATE planned');
        }
        const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM messages');
        expect(Number(rows[0]!.n)).toBe(45_000);
        return plans;
      });
      // The generic plan of prune's ticket delete cannot know how many tickets expired and
      // assumes a third: a Seq Scan of ws_tickets. The pool keeps a generic plan only when it costs
      // no more than the custom ones (index scans while few tickets expire), and the table holds
      // only tickets not yet redeemed or pruned.
      const allowed = (p: { name: string; mode: string }) =>
        p.name === 'pruneTickets' && p.mode === 'generic';
      const offending = found.filter((p) => /Seq Scan/.test(p.plan) && !allowed(p));
      expect(offending.map((p) => `${p.name} (${p.mode}):\n${p.plan}`)).toEqual([]);
      // Sync and history: their ranges of inbox_pkey and messages_by_conversation either way.
      for (const p of found.filter((f) => f.name === 'stream'))
        expect(p.plan, p.mode).toMatch(/Scan on inbox_pkey|Scan using inbox_pkey/);
      for (const p of found.filter((f) => f.name === 'history'))
        expect(p.plan, p.mode).toMatch(/messages_by_conversation/);
      expect(found.find((f) => f.name === 'pruneTickets' && f.mode === 'custom')!.plan).toMatch(
        /ws_tickets_by_expiry/,
      );
    });

    // Deleting a parent row (or changing its key) makes PostgreSQL's foreign key trigger look up
    // the child rows by the child column: without an index there, every such write scans the
    // child table. None of the tables the store deletes from is a parent today.
    it('indexes the child column of every foreign key whose parent rows the store deletes or re-keys', async () => {
      const schema = freshSchema();
      await (await open(schema)).close();
      const keys = await withClient(async (client) => {
        await client.query(`SET search_path = ${schema}`);
        const { rows } = await client.query<{
          child: string;
          parent: string;
          key: string;
          indexed: boolean;
        }>(
          `SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent,
            pk.attname AS key,
            EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.conrelid
              AND i.indkey[0] = c.conkey[1] AND i.indpred IS NULL) AS indexed
          FROM pg_constraint c
          JOIN pg_attribute pk ON pk.attrelid = c.confrelid AND pk.attnum = c.confkey[1]
          WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace`,
          [schema],
        );
        return rows;
      });
      expect(keys.length).toBeGreaterThan(5);
      const all = Object.values(STATEMENTS);
      const deleted = new Set(
        all.flatMap((s) => [...s.matchAll(/DELETE FROM (\w+)/g)].map((m) => m[1]!)),
      );
      const assigned = all.flatMap((s) =>
        [...s.matchAll(/UPDATE (\w+)(?: \w+)? SET ([^]*?) (?:WHERE|FROM)/g)].flatMap((m) =>
          [...m[2]!.matchAll(/(\w+)\s*=/g)].map((c) => `${m[1]}.${c[1]}`),
        ),
      );
      expect(assigned).toContain('messages.client_id');
      const checked = keys.filter(
        (k) => deleted.has(k.parent) || assigned.includes(`${k.parent}.${k.key}`),
      );
      expect(checked.filter((k) => !k.indexed)).toEqual([]);
      // What `indexed` tells: sessions by user are, groups by creator are not.
      const key = (child: string, parent: string) =>
        keys.find((k) => k.child === child && k.parent === parent)?.indexed;
      expect([key('sessions', 'users'), key('conversations', 'users')]).toEqual([true, false]);
      expect([...deleted].sort()).toEqual(['blocks', 'conversation_members', 'ws_tickets']);
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
      // A direct conversation of ben and cy, for a message sent to it by its id.
      const [first] = await store.appendMessages([
        { senderId: ben.id, receiver: 'cy', content: 'hi' },
      ]);
      if (first?.kind !== 'stored') throw new Error(first?.kind);
      const direct = first.event.conversationId;
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
            // To a direct conversation by its id: the receiver is its other member.
            ['message', null, direct, cy.id, null, 'h', null, null],
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
            [9, 'stored', null],
            ...(call === 6 ? [[10, 'stored', null]] : []),
          ]);
          expect(byOrd[4]!.recipients.sort()).toEqual([ann.id, ben.id, cy.id].sort());
          expect(byOrd[8]!.recipients.sort()).toEqual([ben.id, cy.id].sort());
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

    it('keeps a group within the membership rules when two nodes change it at once', async () => {
      const schema = freshSchema();
      const nodes = [await open(schema, { poolSize: 4 }), await open(schema, { poolSize: 4 })];
      const [x, y] = nodes as [PostgresStore, PostgresStore];
      try {
        const users: User[] = [];
        for (let i = 0; i < 8; i++) users.push(await x.createUser(`r${i}`, 'h'));
        const [a, b, ...others] = users as [User, User, ...User[]];
        const max = 5;
        for (let round = 0; round < 5; round++) {
          const g = await x.changeConversation(
            { kind: 'create', actorId: a.id, title: `race ${round}`, memberIds: [b.id] },
            max,
          );
          if (g.kind !== 'changed') throw new Error(g.kind);
          const group = { conversationId: g.conversationId };
          await x.changeConversation(
            { kind: 'role', actorId: a.id, ...group, memberId: b.id, role: 'admin' },
            max,
          );
          // Each admin demotes the other: one of them must stay an admin.
          const demotions = await Promise.all([
            x.changeConversation(
              { kind: 'role', actorId: a.id, ...group, memberId: b.id, role: 'member' },
              max,
            ),
            y.changeConversation(
              { kind: 'role', actorId: b.id, ...group, memberId: a.id, role: 'member' },
              max,
            ),
          ]);
          expect(demotions.map((r) => r.kind).sort()).toEqual(['changed', 'refused']);
          const admin = demotions[0]!.kind === 'changed' ? a : b;
          // Two adds that fit alone but not together (2 members + 2 + 2 > 5).
          const adds = await Promise.all([
            x.changeConversation(
              {
                kind: 'add',
                actorId: admin.id,
                ...group,
                memberIds: [others[0]!.id, others[1]!.id],
              },
              max,
            ),
            y.changeConversation(
              {
                kind: 'add',
                actorId: admin.id,
                ...group,
                memberIds: [others[2]!.id, others[3]!.id],
              },
              max,
            ),
          ]);
          expect(adds.map((r) => (r.kind === 'refused' ? r.reason : r.kind)).sort()).toEqual([
            'changed',
            'member_limit',
          ]);
          const seen = await y.getConversation(admin.id, g.conversationId, 10);
          expect(seen!.memberCount).toBe(4);
          expect(seen!.members.filter((m) => m.role === 'admin')).toHaveLength(1);
          // Every change is an event of the members' streams, in commit order, and no member's
          // stream has an event twice.
          const stream = await x.stream(admin.id, g.event.id, 100);
          const ids = stream.events.map((e) => BigInt(e.id));
          for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
          expect(stream.events.filter((e) => e.type === 'conversation')).toHaveLength(3);
        }
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });

    it('keeps commit order = id order for messages, edits and changes from two nodes; a member polling misses nothing', async () => {
      const schema = freshSchema();
      const nodes = [await open(schema, { poolSize: 4 }), await open(schema, { poolSize: 4 })];
      const [x, y] = nodes as [PostgresStore, PostgresStore];
      const users: User[] = [];
      for (let i = 0; i < 4; i++) users.push(await x.createUser(`m${i}`, 'h'));
      const reader = users[0]!;
      const g = await x.changeConversation(
        { kind: 'create', actorId: reader.id, title: 't', memberIds: users.map((u) => u.id) },
        10,
      );
      if (g.kind !== 'changed') throw new Error(g.kind);
      let writing = true;
      const stored: StreamEvent[] = [g.event];
      const write = async (store: Store, w: number) => {
        for (let k = 0; k < 10; k++) {
          const from = users[(w + k) % users.length]!;
          const batch: NewEvent[] = Array.from({ length: 20 }, (_, i) => ({
            kind: 'message',
            senderId: from.id,
            conversationId: g.conversationId,
            content: `${w}/${k}/${i}`,
            clientId: `${w}-${k}-${i}`,
          }));
          const sent = await store.appendMessages(batch);
          const own = sent.map((r) => {
            if (r.kind !== 'stored') throw new Error(r.kind);
            stored.push(r.event);
            return r.event.id;
          });
          const changed = await store.appendMessages([
            { kind: 'edit', senderId: from.id, messageId: own[0]!, content: 'edited' },
            { kind: 'delete', senderId: from.id, messageId: own[1]! },
            { senderId: from.id, receiver: reader.username, content: 'direct' },
          ]);
          for (const r of changed) if (r.kind === 'stored') stored.push(r.event);
          const renamed = await store.changeConversation(
            {
              kind: 'rename',
              actorId: reader.id,
              conversationId: g.conversationId,
              title: `${w}/${k}`,
            },
            10,
          );
          if (renamed.kind === 'changed') stored.push(renamed.event);
        }
      };
      const seen: string[] = [];
      const read = async () => {
        let cursor: string | undefined;
        for (;;) {
          const done = !writing;
          const page = await y.stream(reader.id, cursor, 1000);
          for (const e of page.events) {
            if (cursor !== undefined) expect(BigInt(e.id)).toBeGreaterThan(BigInt(cursor));
            seen.push(e.id);
            cursor = e.id;
          }
          if (done && !page.hasMore) return;
        }
      };
      const reading = read();
      const writers = [0, 1, 2, 3].map((w) => write(nodes[w % 2]!, w));
      const settled = await Promise.allSettled(writers);
      writing = false;
      settled.push(...(await Promise.allSettled([reading])));
      try {
        for (const s of settled) if (s.status === 'rejected') throw s.reason;
        // The reader is in the group and in every direct conversation: it gets every event.
        expect(seen.sort()).toEqual(stored.map((e) => e.id).sort());
        expect(stored).toHaveLength(1 + 4 * 10 * (20 + 3 + 1));
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });

    it('migrates a schema of the previous release forward without losing or renumbering a message', async () => {
      const schema = freshSchema();
      // The previous release: migrations 001 and 002, its messages stored by append_messages.
      const pool = new pg.Pool({ connectionString: url!, options: `-c search_path=${schema}` });
      const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
      const { error } = await new Migrator({
        db,
        provider: {
          getMigrations: async () => ({
            '001_initial': initial,
            '002_append_function': appendFunction,
          }),
        },
        migrationTableSchema: schema,
      }).migrateToLatest();
      expect(error).toBeUndefined();
      const users = await pool.query<{ id: string }>(`INSERT INTO users
        (username, username_key, password_hash, created_at)
        VALUES ('Ann', 'ann', 'h', now()), ('Ben', 'ben', 'h', now()) RETURNING id`);
      const [ann, ben] = users.rows.map((r) => r.id) as [string, string];
      const key = `${ann}:${ben}`;
      const old = await pool.query<{ id: string; ord: number }>(
        'SELECT * FROM append_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
        [
          1,
          1,
          new Date().toISOString(),
          new Date(Date.now() - 3600_000).toISOString(),
          Array(5).fill(key),
          Array(5).fill(null),
          [ann, ben, ann, ben, ann],
          [ben, ann, ben, ann, ben],
          ['old 0', 'old 1', 'old 2', 'old 3', 'old 4'],
          ['c0', 'c1', 'c2', 'c3', 'c4'],
        ],
      );
      const ids = old.rows.sort((p, q) => p.ord - q.ord).map((r) => r.id);
      await db.destroy();

      const store = await open(schema);
      try {
        const history = await store.history(ann, ben, undefined, 50);
        expect(history.messages.map((m) => [m.id, m.content, m.sender, m.receiver])).toEqual(
          ids.map((id, i) => [id, `old ${i}`, i % 2 ? 'Ben' : 'Ann', i % 2 ? 'Ann' : 'Ben']),
        );
        const stream = await store.stream(ben, undefined, 50);
        expect(stream.events.map((e) => [e.id, e.type])).toEqual(ids.map((id) => [id, 'message']));
        // The old clientIds still deduplicate, and new ids follow the old ones.
        const [dup, fresh] = await store.appendMessages([
          { senderId: ann, receiver: 'ben', content: 'again', clientId: 'c0' },
          { senderId: ann, receiver: 'ben', content: 'new', clientId: 'n' },
        ]);
        expect(dup).toMatchObject({ kind: 'duplicate', event: { id: ids[0], content: 'old 0' } });
        expect(BigInt((fresh as { event: { id: string } }).event.id)).toBeGreaterThan(
          BigInt(ids.at(-1)!),
        );
        const [list] = (await store.listConversations(ann, { limit: 10, memberPreview: 5 }))
          .conversations;
        expect(list).toMatchObject({ kind: 'direct', title: null, memberCount: 2, unreadCount: 2 });
        expect(list!.members.map((m) => [m.username, m.role, m.readUpTo])).toEqual([
          ['Ann', 'member', '0'],
          ['Ben', 'member', '0'],
        ]);
        const [edited] = await store.appendMessages([
          { kind: 'edit', senderId: ben, messageId: ids[1]!, content: 'old 1, edited' },
        ]);
        expect(edited).toMatchObject({ kind: 'stored', recipients: [ann, ben] });
      } finally {
        await store.close();
      }
    });

    it('takes ids that name nothing as not found rather than failing a cast', async () => {
      const store = await open(freshSchema());
      try {
        const a = await store.createUser('ida', 'h');
        expect(
          await store.appendMessages([
            { kind: 'message', senderId: a.id, conversationId: 'abc', content: 'x' },
            {
              kind: 'message',
              senderId: a.id,
              conversationId: '99999999999999999999',
              content: 'x',
            },
            { kind: 'edit', senderId: a.id, messageId: '1e3', content: 'x' },
            { kind: 'delete', senderId: a.id, messageId: '' },
          ]),
        ).toEqual([
          { kind: 'conversation_not_found' },
          { kind: 'conversation_not_found' },
          { kind: 'message_not_found' },
          { kind: 'message_not_found' },
        ]);
        expect(await store.getConversation(a.id, 'abc', 5)).toBeUndefined();
        expect(await store.conversationHistory(a.id, 'abc', undefined, 5)).toBeUndefined();
        expect(await store.membersOf('abc', a.id)).toBeUndefined();
        expect(
          await store.advanceWatermarks('read', [{ userId: a.id, conversationId: 'x', upTo: '1' }]),
        ).toEqual([]);
        expect(
          await store.changeConversation(
            { kind: 'rename', actorId: a.id, conversationId: 'abc', title: 't' },
            5,
          ),
        ).toEqual({ kind: 'refused', reason: 'conversation_not_found' });
        expect(await store.directConversationId(a.id, 'abc')).toBeUndefined();
        expect(await store.blockedBetween(a.id, ['abc'])).toEqual(new Set());
      } finally {
        await store.close();
      }
    });

    it('refuses a change naming an unknown user, as a foreign key would, and stores none of it', async () => {
      const store = await open(freshSchema());
      try {
        const a = await store.createUser('jo', 'h');
        await expect(
          store.changeConversation(
            { kind: 'create', actorId: a.id, title: 't', memberIds: ['999999'] },
            5,
          ),
        ).rejects.toThrow(/unknown user/);
        expect(await store.listConversations(a.id, { limit: 5, memberPreview: 5 })).toEqual({
          conversations: [],
          hasMore: false,
        });
        expect(await store.stream(a.id, undefined, 5)).toEqual({ events: [], hasMore: false });
      } finally {
        await store.close();
      }
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
