// Every statement SqliteStore prepares is served by an index: EXPLAIN QUERY PLAN of the store's own
// SQL (SqliteStore.statementSql, so a change to a query is what this checks) on a database filled
// with a few tens of thousands of rows, twice: as the store runs it (no statistics: the store never
// runs ANALYZE) and after ANALYZE (the planner then weighs real table sizes and value spreads).
// A plan passes when every table it touches is reached by SEARCH on an index, the integer primary
// key or a primary key; SCAN of a table, an automatic index or a sort (USE TEMP B-TREE) fails it
// unless ALLOWED below says why that one is bounded.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-plans-'));
const BASE = '2026-06-01T00:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(BASE) + seconds * 1000).toISOString();
/** "Now" for the parameters: after every message of the fill (45,000 s after BASE). */
const NOW = at(50_000);

// The fill: 3,000 users; 2,999 direct conversations (user n with n + 1) and 50 groups of 20; 40,000
// direct messages with clientIds (one a second from BASE, so expiry sees a window), 5,000 group
// messages, a few hidden by a block and some edited; every event in its members' inboxes; 6,000
// sessions with two refresh tokens each; 2,000 tickets expiring over the next hours; 1,000 blocks.
const USERS = 3000;
const DIRECT = USERS - 1;
const GROUP = DIRECT + 1; // the first group's id
const FILL = `
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${USERS})
INSERT INTO users (username, username_key, password_hash, created_at)
  SELECT 'U' || n, 'u' || n, 'h', '${BASE}' FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${DIRECT})
INSERT INTO conversations (kind, direct_key, created_at)
  SELECT 'direct', n || ':' || (n + 1), '${BASE}' FROM g;
INSERT INTO conversation_members (conversation_id, user_id, joined_at)
  SELECT id, id, '${BASE}' FROM conversations UNION ALL SELECT id, id + 1, '${BASE}' FROM conversations;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 50)
INSERT INTO conversations (kind, title, created_by, created_at)
  SELECT 'group', 'g' || n, n, '${BASE}' FROM g;
WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 19)
INSERT INTO conversation_members (conversation_id, user_id, joined_at, role, joined_after)
  SELECT c.id, (c.id * 7 + g.n * 131) % ${USERS} + 1, '${BASE}',
    CASE g.n WHEN 0 THEN 'admin' ELSE 'member' END, g.n * 10
  FROM conversations c, g WHERE c.kind = 'group';
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 40000)
INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id,
    hidden_from)
  SELECT n % ${DIRECT} + 1, n % ${DIRECT} + 1 + n % 2, n % ${DIRECT} + 2 - n % 2, 'hello',
    strftime('%Y-%m-%dT%H:%M:%fZ', '${BASE}', '+' || n || ' seconds'), 'c' || n,
    CASE WHEN n % 97 = 0 THEN n % ${DIRECT} + 2 - n % 2 END
  FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)
INSERT INTO messages (conversation_id, sender_id, content, created_at, kind, target_id)
  SELECT ${GROUP} + n % 50, (${GROUP} + n % 50) * 7 % ${USERS} + 1, 'hi',
    strftime('%Y-%m-%dT%H:%M:%fZ', '${BASE}', '+' || (40000 + n) || ' seconds'),
    CASE WHEN n % 10 = 0 THEN 'edit' ELSE 'message' END, CASE WHEN n % 10 = 0 THEN n - 1 END
  FROM g;
INSERT OR IGNORE INTO inbox (user_id, message_id)
  SELECT cm.user_id, m.id FROM messages m
  JOIN conversation_members cm ON cm.conversation_id = m.conversation_id
  WHERE m.hidden_from IS NULL OR m.hidden_from <> cm.user_id;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 6000)
INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at)
  SELECT 's' || n, n % ${USERS} + 1, at, until, CASE WHEN n % 5 = 0 THEN at END
  FROM (SELECT n, strftime('%Y-%m-%dT%H:%M:%fZ', '${BASE}', '+' || (n * 10) || ' seconds') AS at,
      strftime('%Y-%m-%dT%H:%M:%fZ', '${BASE}', '+' || (n * 10 + 86400) || ' seconds') AS until
    FROM g);
INSERT INTO refresh_tokens (token_hash, session_id, used_at)
  SELECT 'r' || id, id, created_at FROM sessions UNION ALL SELECT 'q' || id, id, NULL FROM sessions;
INSERT INTO ws_tickets (ticket_hash, session_id, expires_at)
  SELECT 't' || rowid, id, strftime('%Y-%m-%dT%H:%M:%fZ', '${NOW}', (rowid * 5 - 500) || ' seconds')
  FROM sessions WHERE rowid <= 2000;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000)
INSERT INTO blocks (blocker_id, blocked_id, created_at)
  SELECT n * 3 % ${USERS} + 1, n * 7 % ${USERS} + 1, '${BASE}' FROM g WHERE n * 3 % ${USERS} <> n * 7 % ${USERS};
`;

// Representative parameters of every statement (ids that exist, a busy user, a group): a statement
// the store prepares and this table lacks fails the test, so a new query gets a plan check too.
const U = 42; // in direct conversations 41 and 42, and in groups
const C = 42; // the direct conversation of users 42 and 43
const PARAMS: Record<string, unknown[]> = {
  insertUser: ['Zed', 'zed', 'h', NOW],
  userByKey: ['u42'],
  userById: [U],
  searchUsers: ['u4', 'u4\u{10ffff}', 20],
  setPassword: ['h2', U],
  insertSession: ['snew', U, NOW, 'agent', at(90_000)],
  insertRefresh: ['rnew', 's42'],
  refreshByHash: ['q42'],
  spendRefresh: [NOW, 'q42'],
  sessionById: ['s42'],
  liveSessions: [U, NOW],
  touchSession: [NOW, 's42'],
  extendSession: [at(90_000), 's42'],
  revokeSession: [NOW, 's42'],
  revokeOthers: [NOW, U, 's42'],
  insertTicket: ['tnew', 's42', at(50_030)],
  redeemTicket: ['t42'],
  directConversation: ['42:43'],
  insertConversation: ['42:4000', NOW],
  insertGroup: ['title', U, NOW],
  conversationById: [GROUP],
  renameGroup: ['title', GROUP],
  insertMember: [C, U, NOW],
  insertGroupMember: [GROUP, U, NOW, 'member', 45_000],
  deleteMember: [GROUP, U],
  setRole: ['admin', GROUP, U],
  memberRoles: [GROUP],
  membership: [GROUP, U],
  membersPreview: [GROUP, 20],
  memberCount: [GROUP],
  userConversations: [U, Number.MAX_SAFE_INTEGER, 21],
  userConversation: [U, C],
  touchActivityOne: [50_000, C, U, 50_000],
  touchActivityMembers: [50_000, GROUP, 50_000],
  lastMessage: [GROUP, 0, U],
  unreadCount: [C, 30_000, U, U],
  lastEventId: [C],
  contacts: [U, U],
  advanceRead: [40_000, C, U, 40_000],
  advanceDelivered: [40_000, C, U, 40_000],
  insertMessage: [C, U, U + 1, 'hi', NOW, 'cnew', null],
  insertEvent: [C, U, 'edit', 'hi', NOW, 'enew', 30_000, null, null],
  target: [30_000],
  editMessage: ['hi', NOW, 30_000],
  deleteMessage: [NOW, 30_000],
  byClientId: [U, 'c41'],
  releaseClientId: [41],
  insertInbox: [U, 50_000, U + 1, 50_000],
  insertInboxOne: [U, 50_000],
  insertInboxMembers: [50_000, GROUP],
  messageById: [30_000],
  history: [C, Number.MAX_SAFE_INTEGER, 0, U, 51],
  stream: [U, 0, 101],
  lastStreamId: [U],
  blocks: [],
  insertBlock: [U, U + 1, NOW],
  deleteBlock: [U, U + 1],
  listBlocks: [U],
  blockEither: [U, U + 1, U + 1, U],
  settings: [U],
  setSettings: [1, 0, U],
  setLastSeen: [NOW, U],
  lastSeen: [U],
  pruneTickets: [NOW],
  maxMessageId: [],
  // The bisection of storage/expiry.ts probes ids; the release runs in chunks of 5,000 ids.
  firstAtOrAfter: [20_000],
  releaseClientIds: [0, 5000, at(50_000 - 86_400)],
  ping: [],
};

/** Plan lines that are not table access: how SQLite says a query is put together. */
const STRUCTURE =
  /^(MULTI-INDEX OR|INDEX \d+|(CORRELATED )?SCALAR SUBQUERY( \d+)?|CO-ROUTINE .*|MATERIALIZE .*|COMPOUND QUERY|LEFT-MOST SUBQUERY|UNION( ALL)? USING TEMP B-TREE|SCAN CONSTANT ROW|SCAN \d+-ROW VALUES CLAUSE)$/;
/** A table reached through a key: an index, the rowid or a WITHOUT ROWID table's primary key. */
const KEYED =
  /^SEARCH \w+ USING (INDEX \w+|COVERING INDEX \w+|INTEGER PRIMARY KEY|PRIMARY KEY) \(.+\)( LEFT-JOIN)?$/;

/** Plan lines allowed for one statement beyond the rule, each with the reason it stays bounded. */
const ALLOWED: Record<string, { line: RegExp; why: string }> = {
  // max(id) of the whole table: SQLite's min/max optimisation reads the last rowid (one seek).
  maxMessageId: { line: /^SEARCH messages$/, why: 'max(rowid): one seek to the end' },
  // The block cache (SqliteStore.isBlocked) is loaded once per process, on the first direct
  // message; block and unblock keep it up to date. No request reads the table after that.
  blocks: { line: /^SCAN blocks( USING COVERING INDEX \w+)?$/, why: 'once per process' },
  // Sorts: each over one user's own rows, never a table.
  liveSessions: {
    line: /^USE TEMP B-TREE FOR LAST TERM OF ORDER BY$/,
    why: "one user's sessions, ordered by created_at from the index, then id among equals",
  },
  contacts: {
    line: /^USE TEMP B-TREE FOR DISTINCT$/,
    why: "the members of one user's conversations",
  },
  listBlocks: { line: /^USE TEMP B-TREE FOR ORDER BY$/, why: 'the users one user blocks' },
};

/** Which index (or key) a statement must use: the ones the hot paths depend on. */
const EXPECTED: Record<string, RegExp[]> = {
  // Sync: one range of the caller's inbox, in key order (no sort), each event by rowid.
  stream: [
    /^SEARCH i USING PRIMARY KEY \(user_id=\? AND message_id>\?\)$/,
    /^SEARCH m USING INTEGER PRIMARY KEY/,
  ],
  lastStreamId: [/^SEARCH inbox USING (COVERING INDEX \w+|PRIMARY KEY) \(user_id=\?\)$/],
  // History pages: backwards along messages_by_conversation within (after, before).
  history: [
    /^SEARCH m USING INDEX messages_by_conversation \(conversation_id=\? AND id>\? AND id<\?\)$/,
  ],
  // Append: the clientId dedupe, the membership and receiver lookups, the fan-out.
  byClientId: [
    /^SEARCH messages USING INDEX messages_by_client_id \(sender_id=\? AND client_id=\?\)$/,
  ],
  directConversation: [/USING COVERING INDEX sqlite_autoindex_conversations_1 \(direct_key=\?\)/],
  userByKey: [/USING INDEX sqlite_autoindex_users_1 \(username_key=\?\)/],
  insertInboxMembers: [
    /^SEARCH conversation_members USING (PRIMARY KEY|COVERING INDEX \w+) \(conversation_id=\?\)$/,
  ],
  membership: [/USING PRIMARY KEY \(conversation_id=\? AND user_id=\?\)/],
  // The conversation list: one page of the caller's memberships in activity order along
  // members_by_activity (no sort, however many they have); per conversation its last message,
  // unread count (the range after the read watermark) and the first members in join order.
  userConversations: [
    /^SEARCH cm USING INDEX members_by_activity \(user_id=\? AND last_activity_id>\? AND last_activity_id<\?\)$/,
  ],
  // A conversation's state: the caller's one membership, not all of them.
  userConversation: [
    /^SEARCH cm USING (PRIMARY KEY|(COVERING )?INDEX members_by_user) \((conversation_id=\? AND user_id=\?|user_id=\? AND conversation_id=\?)\)$/,
  ],
  // Activity written with each event: the conversation's members by its key.
  touchActivityOne: [
    /^SEARCH conversation_members USING PRIMARY KEY \(conversation_id=\? AND user_id=\?\)$/,
  ],
  touchActivityMembers: [/^SEARCH conversation_members USING PRIMARY KEY \(conversation_id=\?\)$/],
  lastMessage: [/^SEARCH m USING INDEX messages_by_conversation \(conversation_id=\? AND id>\?\)$/],
  unreadCount: [/^SEARCH m USING INDEX messages_by_conversation \(conversation_id=\? AND id>\?\)$/],
  membersPreview: [/^SEARCH cm USING INDEX members_by_join \(conversation_id=\?\)$/],
  lastEventId: [
    /^SEARCH messages USING COVERING INDEX messages_by_conversation \(conversation_id=\?\)$/,
  ],
  // Login, refresh and tickets: by their keys.
  refreshByHash: [/USING PRIMARY KEY \(token_hash=\?\)/],
  sessionById: [/USING INDEX sqlite_autoindex_sessions_1 \(id=\?\)/],
  redeemTicket: [/USING PRIMARY KEY \(ticket_hash=\?\)/],
  searchUsers: [/USING INDEX sqlite_autoindex_users_1 \(username_key>\? AND username_key<\?\)/],
  // Expiry (prune): tickets by their expiry, the window's end and the release by rowid.
  pruneTickets: [/^SEARCH ws_tickets USING INDEX ws_tickets_by_expiry \(expires_at<\?\)$/],
  firstAtOrAfter: [/^SEARCH messages USING INTEGER PRIMARY KEY \(rowid>\?\)$/],
  releaseClientIds: [/^SEARCH messages USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)$/],
};

let sql: Record<string, string>;
/** The filled database as the store leaves it, and a copy of it after ANALYZE. */
const files = { plain: path.join(dir, 'plain.db'), analyzed: path.join(dir, 'analyzed.db') };

beforeAll(async () => {
  const store = await openSqliteStore({ file: files.plain });
  sql = store.statementSql();
  await store.close();
  const db = new Database(files.plain);
  db.transaction(() => db.exec(FILL))();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  fs.copyFileSync(files.plain, files.analyzed);
  const analyzed = new Database(files.analyzed);
  analyzed.exec('ANALYZE');
  analyzed.close();
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The plan lines of each statement, EXPLAINed with its parameters on `file`. */
function plans(file: string): Record<string, string[]> {
  const db = new Database(file, { readonly: true });
  // Foreign key checks are left out of the plans: the foreign key test below covers them.
  db.pragma('foreign_keys = OFF');
  try {
    return Object.fromEntries(
      Object.entries(sql).map(([name, text]) => [
        name,
        db
          .prepare(`EXPLAIN QUERY PLAN ${text}`)
          .all(...(PARAMS[name] ?? []))
          .map((r) => (r as { detail: string }).detail),
      ]),
    );
  } finally {
    db.close();
  }
}

describe('SqliteStore query plans', () => {
  it('has parameters here for every statement the store prepares', () => {
    expect(Object.keys(PARAMS).sort()).toEqual(Object.keys(sql).sort());
  });

  it('holds the fill the plans are made on', () => {
    const db = new Database(files.plain, { readonly: true });
    const count = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    expect(count('messages')).toBe(45_000);
    expect(count('inbox')).toBeGreaterThan(100_000);
    expect(count('users')).toBe(USERS);
    db.close();
  });

  for (const [label, key] of [
    ['as the store runs (no statistics)', 'plain'],
    ['after ANALYZE', 'analyzed'],
  ] as const) {
    it(`serves every statement from an index, ${label}`, () => {
      const found = plans(files[key]);
      const offending: string[] = [];
      for (const [name, lines] of Object.entries(found)) {
        for (const line of lines)
          if (!STRUCTURE.test(line) && !KEYED.test(line) && !ALLOWED[name]?.line.test(line))
            offending.push(`${name}: ${line}\n  ${lines.join(' | ')}`);
        // Nothing to plan only for an INSERT of given values (its cost is the index updates).
        if (
          lines.length === 0 &&
          !/^\s*INSERT (OR IGNORE )?INTO \w+ \([^)]*\)\s*VALUES/.test(sql[name]!)
        )
          offending.push(`${name}: no plan`);
      }
      expect(offending).toEqual([]);
      for (const [name, wanted] of Object.entries(EXPECTED))
        for (const line of wanted)
          expect(found[name], `${name}: ${found[name]!.join(' | ')}`).toContainEqual(
            expect.stringMatching(line),
          );
      // Every allowance is still needed: one no plan shows any more is taken out.
      for (const [name, allowed] of Object.entries(ALLOWED))
        expect(found[name], `${name}: ${allowed.why}`).toContainEqual(
          expect.stringMatching(allowed.line),
        );
    });
  }

  // EXPLAIN above leaves foreign key checks out. Inserting a child looks its parent up by the
  // parent's key (SQLite requires one). Inserting a parent row shows child-table scans in a plan
  // with foreign_keys=ON, but they run only while a violation is outstanding (OP_FkIfZero), never
  // in a committed state. Deleting a parent row, or changing its key, checks every child table by
  // the child column: that must be indexed, else each such write scans the child table.
  it('indexes the child column of every foreign key whose parent rows the store deletes or re-keys', () => {
    const db = new Database(files.plain, { readonly: true });
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_%'",
      )
      .pluck()
      .all() as string[];
    const keys = tables.flatMap((child) =>
      (
        db
          .prepare('SELECT "table" AS parent, "from", "to" FROM pragma_foreign_key_list(?)')
          .all(child) as Array<{ parent: string; from: string; to: string | null }>
      ).map((k) => ({ child, ...k, to: k.to ?? 'id' })),
    );
    expect(keys.length).toBeGreaterThan(5);
    const all = Object.values(sql);
    const deleted = new Set(
      all.flatMap((s) => [...s.matchAll(/DELETE FROM (\w+)/g)].map((m) => m[1]!)),
    );
    const replaced = new Set(
      all.flatMap((s) =>
        [...s.matchAll(/INSERT OR REPLACE INTO (\w+)|REPLACE INTO (\w+)/g)].map(
          (m) => (m[1] ?? m[2])!,
        ),
      ),
    );
    /** The columns each UPDATE assigns, by table. */
    const assigned = all.flatMap((s) =>
      [...s.matchAll(/UPDATE (\w+) SET ([^]*?) WHERE/g)].flatMap((m) =>
        [...m[2]!.matchAll(/(\w+)\s*=/g)].map((c) => `${m[1]}.${c[1]}`),
      ),
    );
    expect(assigned).toContain('messages.client_id');
    /** Whether some full (not partial) index of `table` starts with `column`. */
    const leads = (table: string, column: string) =>
      (
        db.prepare('SELECT name, partial FROM pragma_index_list(?)').all(table) as Array<{
          name: string;
          partial: number;
        }>
      ).some(
        (index) =>
          index.partial === 0 &&
          (db
            .prepare('SELECT name FROM pragma_index_info(?) WHERE seqno = 0')
            .pluck()
            .get(index.name) as string | undefined) === column,
      );
    const checked = keys.filter(
      (k) =>
        deleted.has(k.parent) || replaced.has(k.parent) || assigned.includes(`${k.parent}.${k.to}`),
    );
    expect(checked.filter((k) => !leads(k.child, k.from))).toEqual([]);
    // What `leads` tells: an index or a WITHOUT ROWID primary key counts, a partial index not.
    expect([leads('sessions', 'user_id'), leads('refresh_tokens', 'session_id')]).toEqual([
      true,
      true,
    ]);
    expect([leads('blocks', 'blocker_id'), leads('messages', 'sender_id')]).toEqual([true, false]);
    // The tables the store deletes from are none of the parents today: users, sessions and
    // conversations are never deleted and their keys never change.
    expect([...deleted].sort()).toEqual(['blocks', 'conversation_members', 'ws_tickets']);
    db.close();
  });
});
