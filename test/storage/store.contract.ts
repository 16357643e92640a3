// The Store contract: one suite that every Store implementation must pass. An implementation's
// test file calls `storeContract` with a factory; cases it cannot meet are skipped there, with a reason.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConversationChange, Store, StreamPage } from '../../src/storage/store.js';
import { UsernameTakenError } from '../../src/storage/store.js';

export interface StoreFactoryOptions {
  now?: () => Date;
  idempotencyWindowMs?: number;
}

export type StoreFactory = (options: StoreFactoryOptions) => Promise<Store>;

const hour = 3600_000;

/** The content of each event of a stream page (undefined for events without one). */
const idOfEvent = (r: unknown) => (r as { event: { id: string } }).event.id;
const contents = (page: StreamPage) => page.events.map((e) => (e as { content?: string }).content);

export function storeContract(name: string, open: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let clock = Date.parse('2026-01-01T00:00:00.000Z');
    const now = () => new Date(clock);

    beforeEach(async () => {
      clock = Date.parse('2026-01-01T00:00:00.000Z');
      store = await open({ now, idempotencyWindowMs: 24 * hour });
    });
    afterEach(() => store.close());

    const user = (name: string) => store.createUser(name, `hash-of-${name}`);
    const session = (userId: string, refresh = `r-${Math.random()}`) =>
      store.createSession({
        userId,
        userAgent: 'test',
        refreshTokenHash: refresh,
        expiresAt: new Date(clock + hour),
      });

    describe('users', () => {
      it('creates users with unique names regardless of case and finds them in any case', async () => {
        const alice = await user('Alice');
        expect(alice).toEqual({
          id: expect.any(String),
          username: 'Alice',
          createdAt: now().toISOString(),
        });
        await expect(user('aLiCe')).rejects.toBeInstanceOf(UsernameTakenError);
        expect(await store.findUserByName('ALICE')).toMatchObject({
          id: alice.id,
          username: 'Alice',
          passwordHash: 'hash-of-Alice',
        });
        expect(await store.findUserById(alice.id)).toMatchObject({ username: 'Alice' });
        expect(await store.findUserByName('nobody')).toBeUndefined();
        expect(await store.findUserById('999999')).toBeUndefined();
      });

      it('searches by case-insensitive prefix, ordered, limited', async () => {
        for (const n of ['bob', 'Bobby', 'bo.b', 'carol', 'BOBCAT']) await user(n);
        const found = await store.searchUsers('BOB', 10);
        expect(found.map((u) => u.username)).toEqual(['bob', 'Bobby', 'BOBCAT']);
        expect(await store.searchUsers('bob', 2)).toHaveLength(2);
        expect(await store.searchUsers('zzz', 10)).toEqual([]);
      });

      it('changes a password hash', async () => {
        const u = await user('dave');
        await store.setPasswordHash(u.id, 'new-hash');
        expect((await store.findUserById(u.id))?.passwordHash).toBe('new-hash');
      });
    });

    describe('sessions and refresh tokens', () => {
      it('lists live sessions, touches and revokes them', async () => {
        const u = await user('erin');
        const s1 = await session(u.id);
        clock += 1000;
        const s2 = await session(u.id);
        expect(s1).toMatchObject({
          userId: u.id,
          lastUsedAt: null,
          userAgent: 'test',
          revokedAt: null,
        });
        expect((await store.listSessions(u.id)).map((s) => s.id)).toEqual([s2.id, s1.id]);
        await store.touchSession(s1.id, now());
        expect((await store.getSession(s1.id))?.lastUsedAt).toBe(now().toISOString());
        expect(await store.revokeSession(s1.id)).toBe(true);
        expect(await store.revokeSession(s1.id)).toBe(false);
        expect((await store.getSession(s1.id))?.revokedAt).not.toBeNull();
        expect((await store.listSessions(u.id)).map((s) => s.id)).toEqual([s2.id]);
        const s3 = await session(u.id);
        expect((await store.revokeOtherSessions(u.id, s3.id)).sort()).toEqual([s2.id]);
        expect((await store.listSessions(u.id)).map((s) => s.id)).toEqual([s3.id]);
      });

      it('hides expired sessions', async () => {
        const u = await user('frank');
        await session(u.id);
        clock += 2 * hour;
        expect(await store.listSessions(u.id)).toEqual([]);
      });

      it('rotates a refresh token exactly once; reuse revokes the session', async () => {
        const u = await user('gina');
        const s = await session(u.id, 'r1');
        const rotated = await store.rotateRefreshToken('r1', 'r2', new Date(clock + 2 * hour));
        expect(rotated).toMatchObject({ kind: 'rotated', session: { id: s.id } });
        expect(await store.rotateRefreshToken('r1', 'r3', new Date(clock + hour))).toEqual({
          kind: 'reused',
          sessionId: s.id,
        });
        expect((await store.getSession(s.id))?.revokedAt).not.toBeNull();
        expect(await store.rotateRefreshToken('r2', 'r4', new Date(clock + hour))).toEqual({
          kind: 'invalid',
        });
        expect(await store.rotateRefreshToken('unknown', 'r5', new Date(clock + hour))).toEqual({
          kind: 'invalid',
        });
      });

      it('gives exactly one success to racing rotations of one token', async () => {
        const u = await user('hank');
        await session(u.id, 'race');
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            store.rotateRefreshToken('race', `next-${i}`, new Date(clock + hour)),
          ),
        );
        expect(results.filter((r) => r.kind === 'rotated')).toHaveLength(1);
      });

      it('refuses to rotate the token of an expired session', async () => {
        const u = await user('ivan');
        await session(u.id, 'old');
        clock += 2 * hour;
        expect(await store.rotateRefreshToken('old', 'new', new Date(clock + hour))).toEqual({
          kind: 'invalid',
        });
      });
    });

    describe('tickets', () => {
      it('redeems a ticket once, even when callers race, and never after expiry', async () => {
        const u = await user('judy');
        const s = await session(u.id);
        await store.createTicket('t1', s.id, new Date(clock + 30_000));
        const results = await Promise.all([
          store.redeemTicket('t1'),
          store.redeemTicket('t1'),
          store.redeemTicket('t1'),
        ]);
        expect(results.filter((r) => r === s.id)).toHaveLength(1);
        await store.createTicket('t2', s.id, new Date(clock + 30_000));
        clock += 31_000;
        expect(await store.redeemTicket('t2')).toBeUndefined();
        expect(await store.redeemTicket('never')).toBeUndefined();
      });
    });

    describe('messages', () => {
      it('stores a batch in order, with increasing ids, and reports unknown receivers in place', async () => {
        const a = await user('ann');
        const b = await user('ben');
        const results = await store.appendMessages([
          { senderId: a.id, receiver: 'BEN', content: 'one' },
          { senderId: a.id, receiver: 'nobody', content: 'lost' },
          { senderId: b.id, receiver: 'ann', content: 'two', clientId: 'c' },
        ]);
        expect(results.map((r) => r.kind)).toEqual(['stored', 'unknown_receiver', 'stored']);
        const [first, , second] = results as Array<
          Extract<(typeof results)[number], { kind: 'stored' }>
        >;
        expect(first!.event).toEqual({
          type: 'message',
          id: expect.stringMatching(/^\d+$/),
          conversationId: expect.stringMatching(/^\d+$/),
          sender: 'ann',
          receiver: 'ben',
          content: 'one',
          createdAt: now().toISOString(),
        });
        expect(first!.recipients.sort()).toEqual([a.id, b.id].sort());
        expect(BigInt(second!.event.id)).toBeGreaterThan(BigInt(first!.event.id));
      });

      it('stores a (sender, clientId) once within the window, and again after it', async () => {
        const a = await user('cat');
        const b = await user('dan');
        const [first] = await store.appendMessages([
          { senderId: a.id, receiver: 'dan', content: 'x', clientId: 'k' },
        ]);
        const [again, inBatch] = await store.appendMessages([
          { senderId: a.id, receiver: 'dan', content: 'different', clientId: 'k' },
          { senderId: a.id, receiver: 'dan', content: 'y', clientId: 'k2' },
        ]);
        expect(first!.kind).toBe('stored');
        expect(again).toEqual({
          kind: 'duplicate',
          event: (first as { event: unknown }).event,
        });
        expect(inBatch!.kind).toBe('stored');
        // Another sender may use the same clientId.
        const [other] = await store.appendMessages([
          { senderId: b.id, receiver: 'cat', content: 'z', clientId: 'k' },
        ]);
        expect(other!.kind).toBe('stored');
        clock += 25 * hour;
        const [later] = await store.appendMessages([
          { senderId: a.id, receiver: 'dan', content: 'later', clientId: 'k' },
        ]);
        expect(later!.kind).toBe('stored');
      });

      it('releases expired idempotency keys on prune, and keeps fresh ones', async () => {
        const a = await user('ida');
        await user('jon');
        await store.appendMessages([
          { senderId: a.id, receiver: 'jon', content: 'old', clientId: 'p' },
        ]);
        clock += 23 * hour;
        await store.appendMessages([
          { senderId: a.id, receiver: 'jon', content: 'new', clientId: 'q' },
        ]);
        clock += 2 * hour;
        await store.prune();
        const [p, q] = await store.appendMessages([
          { senderId: a.id, receiver: 'jon', content: 'p again', clientId: 'p' },
          { senderId: a.id, receiver: 'jon', content: 'q again', clientId: 'q' },
        ]);
        expect(p!.kind).toBe('stored');
        expect(q!.kind).toBe('duplicate');
      });

      it('pages history backwards and the stream forwards, oldest first', async () => {
        const a = await user('eve');
        const b = await user('fay');
        const c = await user('gus');
        const batch = [];
        for (let i = 0; i < 10; i++)
          batch.push({
            senderId: i % 2 ? b.id : a.id,
            receiver: i % 2 ? 'eve' : 'fay',
            content: `m${i}`,
          });
        batch.push({ senderId: c.id, receiver: 'eve', content: 'from gus' });
        const ids = (await store.appendMessages(batch)).map(
          (r) => (r as { event: { id: string } }).event.id,
        );

        const newest = await store.history(a.id, b.id, undefined, 4);
        expect(newest.messages.map((m) => m.content)).toEqual(['m6', 'm7', 'm8', 'm9']);
        expect(newest.hasMore).toBe(true);
        const older = await store.history(b.id, a.id, newest.messages[0]!.id, 100);
        expect(older.messages.map((m) => m.content)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
        expect(older.hasMore).toBe(false);
        expect(await store.history(b.id, c.id, undefined, 10)).toEqual({
          messages: [],
          hasMore: false,
        });

        const stream = await store.stream(a.id, ids[2], 5);
        expect(contents(stream)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
        expect(stream.hasMore).toBe(true);
        const rest = await store.stream(a.id, stream.events.at(-1)!.id, 5);
        expect(contents(rest)).toEqual(['m8', 'm9', 'from gus']);
        expect(rest.hasMore).toBe(false);
        expect(contents(await store.stream(c.id, undefined, 10))).toEqual(['from gus']);
        expect(await store.lastStreamId(a.id)).toBe(ids.at(-1));
        expect(await store.lastStreamId(b.id)).toBe(ids[9]);
      });

      it('puts a message to oneself in the stream once', async () => {
        const a = await user('hal');
        await store.appendMessages([{ senderId: a.id, receiver: 'hal', content: 'note' }]);
        expect((await store.stream(a.id, undefined, 10)).events).toHaveLength(1);
      });

      it('resolves a clientId repeated within one batch to its first message', async () => {
        const a = await user('ike');
        await user('joy');
        const results = await store.appendMessages([
          { senderId: a.id, receiver: 'nobody', content: 'lost', clientId: 'r' },
          { senderId: a.id, receiver: 'joy', content: 'first', clientId: 'r' },
          { senderId: a.id, receiver: 'joy', content: 'second', clientId: 'r' },
          { senderId: a.id, receiver: 'joy', content: 'other', clientId: 's' },
        ]);
        expect(results.map((r) => r.kind)).toEqual([
          'unknown_receiver',
          'stored',
          'duplicate',
          'stored',
        ]);
        const first = (results[1] as { event: { content: string } }).event;
        expect(first.content).toBe('first');
        expect(results[2]).toEqual({ kind: 'duplicate', event: first });
        const stream = await store.stream(a.id, undefined, 10);
        expect(contents(stream)).toEqual(['first', 'other']);
      });

      it('gives a batch ids in its order, also around duplicates and reused expired keys', async () => {
        const a = await user('kai');
        const b = await user('lou');
        await store.appendMessages([
          { senderId: a.id, receiver: 'lou', content: 'old', clientId: 'expired' },
        ]);
        clock += 25 * hour;
        const [kept] = (await store.appendMessages([
          { senderId: a.id, receiver: 'lou', content: 'kept', clientId: 'fresh' },
        ])) as Array<{ event: { id: string } }>;
        const batch = Array.from({ length: 60 }, (_, i) => ({
          senderId: i % 3 ? a.id : b.id,
          receiver: i % 3 ? 'lou' : 'kai',
          content: `n${i}`,
          clientId: i === 20 ? 'expired' : i === 40 ? 'fresh' : `n${i}`,
        }));
        const results = await store.appendMessages(batch);
        expect(results[20]!.kind).toBe('stored');
        expect(results[40]).toEqual({ kind: 'duplicate', event: kept!.event });
        const stored = results.filter((r) => r.kind === 'stored');
        expect(stored).toHaveLength(59);
        const ids = stored.map((r) => BigInt(r.event.id));
        for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
        // Lou's stream after 'kept': the batch in its order, without the duplicate.
        const after = await store.stream(b.id, kept!.event.id, 100);
        expect(contents(after)).toEqual(batch.map((m) => m.content).filter((c) => c !== 'n40'));
      });
    });

    describe('conversations', () => {
      const MAX = 5;
      const group = async (actor: string, title: string | null, members: string[]) => {
        const r = await store.changeConversation(
          { kind: 'create', actorId: actor, title, memberIds: members },
          MAX,
        );
        if (r.kind !== 'changed') throw new Error(`create: ${JSON.stringify(r)}`);
        return r;
      };
      const send = async (
        senderId: string,
        conversationId: string,
        content: string,
        clientId?: string,
      ) => {
        const [r] = await store.appendMessages([
          { kind: 'message', senderId, conversationId, content, clientId },
        ]);
        return r!;
      };
      const idOf = (r: unknown) => (r as { event: { id: string } }).event.id;
      const types = (page: StreamPage) => page.events.map((e) => e.type);

      it("creates a group with its creator as admin; the event joins every member's stream", async () => {
        const [a, b, c] = [await user('ada'), await user('bea'), await user('cy')];
        const created = await group(a.id, 'team', [b.id, c.id, b.id, a.id]);
        expect(created.recipients.sort()).toEqual([a.id, b.id, c.id].sort());
        expect(created.event).toMatchObject({
          type: 'conversation',
          conversationId: created.conversationId,
          action: 'created',
          actor: 'ada',
          title: 'team',
          members: ['ada', 'bea', 'cy'],
        });
        for (const u of [a, b, c])
          expect((await store.stream(u.id, undefined, 10)).events).toEqual([created.event]);
        const seen = await store.getConversation(b.id, created.conversationId, 10);
        expect(seen).toMatchObject({
          id: created.conversationId,
          kind: 'group',
          title: 'team',
          memberCount: 3,
          role: 'member',
          unreadCount: 0,
          lastMessage: null,
        });
        expect(seen!.members.map((m) => [m.username, m.role])).toEqual([
          ['ada', 'admin'],
          ['bea', 'member'],
          ['cy', 'member'],
        ]);
        const untitled = await group(b.id, null, []);
        expect(untitled.event).not.toHaveProperty('title');
        expect(await store.getConversation(b.id, untitled.conversationId, 10)).toMatchObject({
          title: null,
          memberCount: 1,
          role: 'admin',
        });
        const outsider = await user('dot');
        expect(
          await store.getConversation(outsider.id, created.conversationId, 10),
        ).toBeUndefined();
        expect(await store.membersOf(created.conversationId, outsider.id)).toBeUndefined();
        expect((await store.membersOf(created.conversationId, c.id))!.sort()).toEqual(
          [a.id, b.id, c.id].sort(),
        );
        expect(
          await store.changeConversation(
            {
              kind: 'create',
              actorId: a.id,
              title: 'big',
              memberIds: ['1', '2', '3', '4', '5', '6'],
            },
            MAX,
          ),
        ).toEqual({ kind: 'refused', reason: 'member_limit' });
      });

      it('stores a group message for every member; a non-member gets conversation_not_found', async () => {
        const [a, b, c] = [await user('eli'), await user('fox'), await user('gil')];
        const g = await group(a.id, 'g', [b.id]);
        const sent = await send(b.id, g.conversationId, 'hello all', 'k1');
        expect(sent).toMatchObject({
          kind: 'stored',
          event: {
            type: 'message',
            conversationId: g.conversationId,
            sender: 'fox',
            content: 'hello all',
          },
        });
        expect((sent as { event: object }).event).not.toHaveProperty('receiver');
        expect((sent as { recipients: string[] }).recipients.sort()).toEqual([a.id, b.id].sort());
        expect(await send(b.id, g.conversationId, 'again', 'k1')).toEqual({
          kind: 'duplicate',
          event: (sent as { event: unknown }).event,
        });
        expect(await send(c.id, g.conversationId, 'let me in')).toEqual({
          kind: 'conversation_not_found',
        });
        expect(await send(c.id, '999999', 'nowhere')).toEqual({ kind: 'conversation_not_found' });
        expect(contents(await store.stream(a.id, g.event.id, 10))).toEqual(['hello all']);
        expect(contents(await store.stream(c.id, undefined, 10))).toEqual([]);
        const page = await store.conversationHistory(a.id, g.conversationId, undefined, 10);
        expect(page!.messages.map((m) => m.content)).toEqual(['hello all']);
        expect(
          await store.conversationHistory(c.id, g.conversationId, undefined, 10),
        ).toBeUndefined();
      });

      it('sends to a direct conversation by its id, like by receiver', async () => {
        const [a, b] = [await user('hub'), await user('ivy')];
        const [first] = await store.appendMessages([
          { senderId: a.id, receiver: 'ivy', content: 'one' },
        ]);
        const conversationId = (first as { event: { conversationId: string } }).event
          .conversationId;
        expect(await store.directConversationId(b.id, a.id)).toBe(conversationId);
        const r = await send(b.id, conversationId, 'two');
        expect(r).toMatchObject({ kind: 'stored', event: { sender: 'ivy', receiver: 'hub' } });
        expect(contents(await store.stream(a.id, undefined, 10))).toEqual(['one', 'two']);
        const [dm] = (await store.listConversations(a.id, { limit: 10, memberPreview: 10 }))
          .conversations;
        expect(dm).toMatchObject({
          id: conversationId,
          kind: 'direct',
          title: null,
          memberCount: 2,
        });
        expect(dm!.lastMessage).toMatchObject({ content: 'two', sender: 'ivy' });
        expect(dm!.unreadCount).toBe(1);
      });

      it('applies the membership rules: admins add, remove and promote; a group keeps an admin', async () => {
        const [a, b, c, d] = [
          await user('jam'),
          await user('kit'),
          await user('lee'),
          await user('max'),
        ];
        const g = await group(a.id, 'rules', [b.id]);
        const id = g.conversationId;
        const change = (c: ConversationChange) => store.changeConversation(c, 3);
        expect(
          await change({ kind: 'add', actorId: b.id, conversationId: id, memberIds: [c.id] }),
        ).toEqual({
          kind: 'refused',
          reason: 'not_admin',
        });
        expect(
          await change({ kind: 'add', actorId: d.id, conversationId: id, memberIds: [d.id] }),
        ).toEqual({
          kind: 'refused',
          reason: 'conversation_not_found',
        });
        expect(
          await change({ kind: 'add', actorId: a.id, conversationId: id, memberIds: [b.id] }),
        ).toEqual({
          kind: 'unchanged',
          conversationId: id,
        });
        const added = await change({
          kind: 'add',
          actorId: a.id,
          conversationId: id,
          memberIds: [c.id],
        });
        expect(added).toMatchObject({
          kind: 'changed',
          event: { action: 'members_added', members: ['lee'] },
        });
        expect(
          await change({ kind: 'add', actorId: a.id, conversationId: id, memberIds: [d.id] }),
        ).toEqual({
          kind: 'refused',
          reason: 'member_limit',
        });
        expect(
          await change({ kind: 'remove', actorId: a.id, conversationId: id, memberId: a.id }),
        ).toEqual({
          kind: 'refused',
          reason: 'last_admin',
        });
        expect(
          await change({ kind: 'remove', actorId: b.id, conversationId: id, memberId: c.id }),
        ).toEqual({
          kind: 'refused',
          reason: 'not_admin',
        });
        expect(
          await change({ kind: 'remove', actorId: a.id, conversationId: id, memberId: d.id }),
        ).toEqual({
          kind: 'refused',
          reason: 'member_not_found',
        });
        const promoted = await change({
          kind: 'role',
          actorId: a.id,
          conversationId: id,
          memberId: b.id,
          role: 'admin',
        });
        expect(promoted).toMatchObject({
          event: { action: 'role_changed', members: ['kit'], role: 'admin' },
        });
        const left = await change({
          kind: 'remove',
          actorId: a.id,
          conversationId: id,
          memberId: a.id,
        });
        expect(left).toMatchObject({
          kind: 'changed',
          event: { action: 'member_removed', members: ['jam'] },
        });
        expect((left as { recipients: string[] }).recipients).toContain(a.id);
        expect(
          await change({
            kind: 'role',
            actorId: b.id,
            conversationId: id,
            memberId: b.id,
            role: 'member',
          }),
        ).toEqual({
          kind: 'refused',
          reason: 'last_admin',
        });
        expect(
          await change({ kind: 'rename', actorId: c.id, conversationId: id, title: 'x' }),
        ).toEqual({
          kind: 'refused',
          reason: 'not_admin',
        });
        expect(
          await change({ kind: 'rename', actorId: b.id, conversationId: id, title: 'rules' }),
        ).toEqual({
          kind: 'unchanged',
          conversationId: id,
        });
        expect(
          await change({ kind: 'rename', actorId: b.id, conversationId: id, title: 'new' }),
        ).toMatchObject({
          event: { action: 'renamed', title: 'new', actor: 'kit' },
        });
        // A member may leave by themself.
        expect(
          await change({ kind: 'remove', actorId: c.id, conversationId: id, memberId: c.id }),
        ).toMatchObject({
          kind: 'changed',
        });
      });

      it("stops a removed member's stream at their removal, and shows a new member only what follows their joining", async () => {
        const [a, b, c] = [await user('ned'), await user('oli'), await user('pam')];
        const g = await group(a.id, 'h', [b.id]);
        await send(a.id, g.conversationId, 'before pam');
        const added = await store.changeConversation(
          { kind: 'add', actorId: a.id, conversationId: g.conversationId, memberIds: [c.id] },
          MAX,
        );
        await send(a.id, g.conversationId, 'with pam');
        const removed = await store.changeConversation(
          { kind: 'remove', actorId: a.id, conversationId: g.conversationId, memberId: b.id },
          MAX,
        );
        expect((removed as { recipients: string[] }).recipients.sort()).toEqual(
          [a.id, b.id, c.id].sort(),
        );
        const after = await send(a.id, g.conversationId, 'without oli');
        expect((after as { recipients: string[] }).recipients.sort()).toEqual([a.id, c.id].sort());
        expect(types(await store.stream(b.id, undefined, 20))).toEqual([
          'conversation',
          'message',
          'conversation',
          'message',
          'conversation',
        ]);
        expect(contents(await store.stream(c.id, undefined, 20))).toEqual([
          undefined,
          'with pam',
          undefined,
          'without oli',
        ]);
        expect((await store.stream(c.id, undefined, 20)).events[0]).toEqual(
          (added as { event: unknown }).event,
        );
        const history = await store.conversationHistory(c.id, g.conversationId, undefined, 20);
        expect(history!.messages.map((m) => m.content)).toEqual(['with pam', 'without oli']);
        expect(
          await store.conversationHistory(b.id, g.conversationId, undefined, 20),
        ).toBeUndefined();
        expect(await send(b.id, g.conversationId, 'still here?')).toEqual({
          kind: 'conversation_not_found',
        });
      });

      it("edits and deletes only the sender's own messages, as events, idempotent by clientId", async () => {
        const [a, b, c] = [await user('quin'), await user('rex'), await user('sam')];
        const g = await group(a.id, 'e', [b.id]);
        const m = idOf(await send(a.id, g.conversationId, 'tpyo'));
        const edit = (senderId: string, messageId: string, content: string, clientId?: string) =>
          store
            .appendMessages([{ kind: 'edit', senderId, messageId, content, clientId }])
            .then((r) => r[0]!);
        const del = (senderId: string, messageId: string, clientId?: string) =>
          store
            .appendMessages([{ kind: 'delete', senderId, messageId, clientId }])
            .then((r) => r[0]!);
        expect(await edit(b.id, m, 'not mine')).toEqual({ kind: 'not_message_sender' });
        expect(await edit(c.id, m, 'outsider')).toEqual({ kind: 'message_not_found' });
        expect(await edit(a.id, '999999', 'none')).toEqual({ kind: 'message_not_found' });
        const edited = await edit(a.id, m, 'typo', 'e1');
        expect(edited).toMatchObject({
          kind: 'stored',
          event: {
            type: 'edit',
            messageId: m,
            conversationId: g.conversationId,
            sender: 'quin',
            content: 'typo',
          },
        });
        expect((edited as { recipients: string[] }).recipients.sort()).toEqual([a.id, b.id].sort());
        expect(await edit(a.id, m, 'ignored', 'e1')).toEqual({
          kind: 'duplicate',
          event: (edited as { event: unknown }).event,
        });
        let history = await store.conversationHistory(b.id, g.conversationId, undefined, 10);
        expect(history!.messages).toEqual([
          expect.objectContaining({ id: m, content: 'typo', editedAt: now().toISOString() }),
        ]);
        expect(await del(b.id, m)).toEqual({ kind: 'not_message_sender' });
        const deleted = await del(a.id, m, 'd1');
        expect(deleted).toMatchObject({ kind: 'stored', event: { type: 'delete', messageId: m } });
        expect(await del(a.id, m)).toEqual({ kind: 'message_not_found' });
        expect(await edit(a.id, m, 'too late')).toEqual({ kind: 'message_not_found' });
        history = await store.conversationHistory(b.id, g.conversationId, undefined, 10);
        expect(history!.messages[0]).toMatchObject({ id: m, deletedAt: now().toISOString() });
        expect(history!.messages[0]).not.toHaveProperty('content');
        expect(types(await store.stream(b.id, undefined, 10))).toEqual([
          'conversation',
          'message',
          'edit',
          'delete',
        ]);
        // Replayed, the message itself is a tombstone too.
        expect((await store.stream(b.id, undefined, 10)).events[1]).not.toHaveProperty('content');
        // A clientId is shared by every kind of write of one sender.
        expect(await send(a.id, g.conversationId, 'reuse', 'd1')).toEqual({
          kind: 'duplicate',
          event: (deleted as { event: unknown }).event,
        });
      });

      it("moves read and delivered watermarks forward only, never past the newest event; unread excludes one's own", async () => {
        const [a, b] = [await user('tad'), await user('uma')];
        const g = await group(a.id, 'w', [b.id]);
        const ids = [];
        for (const [who, text] of [
          [a, 'a1'],
          [b, 'b1'],
          [a, 'a2'],
          [a, 'a3'],
        ] as const)
          ids.push(idOf(await send(who.id, g.conversationId, text)));
        const unread = async (u: string) =>
          (await store.getConversation(u, g.conversationId, 10))!.unreadCount;
        expect(await unread(b.id)).toBe(3);
        expect(await unread(a.id)).toBe(1);
        const mark = (userId: string, upTo: string) => ({
          userId,
          conversationId: g.conversationId,
          upTo,
        });
        expect(await store.advanceWatermarks('read', [mark(b.id, ids[2]!)])).toEqual([
          mark(b.id, ids[2]!),
        ]);
        expect(await unread(b.id)).toBe(1);
        expect(await store.advanceWatermarks('read', [mark(b.id, ids[0]!)])).toEqual([]);
        expect(await store.advanceWatermarks('read', [mark(b.id, '99999999')])).toEqual([
          mark(b.id, ids[3]!),
        ]);
        expect(await unread(b.id)).toBe(0);
        const outsider = await user('val');
        expect(await store.advanceWatermarks('read', [mark(outsider.id, ids[1]!)])).toEqual([]);
        expect(await store.advanceWatermarks('delivered', [mark(b.id, ids[1]!)])).toEqual([
          mark(b.id, ids[1]!),
        ]);
        const members = (await store.getConversation(a.id, g.conversationId, 10))!.members;
        expect(members.find((m) => m.username === 'uma')).toEqual({
          username: 'uma',
          role: 'member',
          deliveredUpTo: ids[1],
          readUpTo: ids[3],
        });
      });

      it('lists conversations by most recent activity, paged by lastActivityId', async () => {
        const [a, b, c] = [await user('wes'), await user('xia'), await user('yan')];
        const g1 = await group(a.id, 'one', [b.id]);
        const g2 = await group(a.id, 'two', [c.id]);
        await store.appendMessages([{ senderId: a.id, receiver: 'xia', content: 'dm' }]);
        await send(c.id, g1.conversationId, 'wrong group');
        await send(b.id, g1.conversationId, 'bump one');
        const first = await store.listConversations(a.id, { limit: 2, memberPreview: 1 });
        expect(first.conversations.map((x) => x.title)).toEqual(['one', null]);
        expect(first.hasMore).toBe(true);
        expect(first.conversations[0]!.members).toHaveLength(1);
        expect(first.conversations[0]!.memberCount).toBe(2);
        const rest = await store.listConversations(a.id, {
          limit: 2,
          before: first.conversations[1]!.lastActivityId,
          memberPreview: 1,
        });
        expect(rest.conversations.map((x) => x.title)).toEqual(['two']);
        expect(rest.hasMore).toBe(false);
        expect(rest.conversations[0]!.id).toBe(g2.conversationId);
        expect((await store.contactsOf(a.id)).sort()).toEqual([b.id, c.id].sort());
        expect(await store.contactsOf((await user('zed')).id)).toEqual([]);
      });
    });

    describe('blocks and settings', () => {
      it('hides direct messages from a blocked user from the blocker, live and in history', async () => {
        const [a, b] = [await user('bo'), await user('cal')];
        const [before] = await store.appendMessages([
          { senderId: b.id, receiver: 'bo', content: 'hi' },
        ]);
        await store.block(a.id, b.id);
        await store.block(a.id, b.id);
        expect((await store.listBlocks(a.id)).map((u) => u.username)).toEqual(['cal']);
        expect(await store.blockedBetween(a.id, [b.id])).toEqual(new Set([b.id]));
        expect(await store.blockedBetween(b.id, [a.id])).toEqual(new Set([a.id]));
        const [hidden] = await store.appendMessages([
          { senderId: b.id, receiver: 'bo', content: 'hidden' },
        ]);
        expect(hidden).toMatchObject({ kind: 'stored', recipients: [b.id] });
        // A first message from a blocked user does not show the blocker a new conversation.
        const d = await user('dan2');
        await store.block(a.id, d.id);
        await store.appendMessages([{ senderId: d.id, receiver: 'bo', content: 'first' }]);
        const list = await store.listConversations(a.id, { limit: 10, memberPreview: 2 });
        expect(list.conversations.map((c) => c.members.map((m) => m.username).sort())).toEqual([
          ['bo', 'cal'],
        ]);
        expect(
          (await store.listConversations(d.id, { limit: 10, memberPreview: 2 })).conversations,
        ).toHaveLength(1);
        await store.unblock(a.id, d.id);
        expect(contents(await store.stream(a.id, undefined, 10))).toEqual(['hi']);
        expect(contents(await store.stream(b.id, undefined, 10))).toEqual(['hi', 'hidden']);
        expect(
          (await store.history(a.id, b.id, undefined, 10)).messages.map((m) => m.content),
        ).toEqual(['hi']);
        expect(
          (await store.history(b.id, a.id, undefined, 10)).messages.map((m) => m.content),
        ).toEqual(['hi', 'hidden']);
        // The blocker still writes to the blocked user.
        const [reply] = await store.appendMessages([
          { senderId: a.id, receiver: 'cal', content: 'bye' },
        ]);
        expect((reply as { recipients: string[] }).recipients.sort()).toEqual([a.id, b.id].sort());
        // Edits of a hidden message stay hidden.
        const [edit] = await store.appendMessages([
          { kind: 'edit', senderId: b.id, messageId: idOfEvent(hidden), content: 'still hidden' },
        ]);
        expect(edit).toMatchObject({ kind: 'stored', recipients: [b.id] });
        await store.unblock(a.id, b.id);
        expect(await store.listBlocks(a.id)).toEqual([]);
        const [after] = await store.appendMessages([
          { senderId: b.id, receiver: 'bo', content: 'after' },
        ]);
        expect((after as { recipients: string[] }).recipients.sort()).toEqual([a.id, b.id].sort());
        expect(
          (await store.history(a.id, b.id, undefined, 10)).messages.map((m) => m.content),
        ).toEqual(['hi', 'bye', 'after']);
        expect(idOfEvent(before)).toBeDefined();
      });

      it('keeps settings (read receipts, last seen) and the last-seen time', async () => {
        const a = await user('dee');
        expect(await store.getSettings(a.id)).toEqual({ readReceipts: true, showLastSeen: true });
        expect(await store.setSettings(a.id, { readReceipts: false })).toEqual({
          readReceipts: false,
          showLastSeen: true,
        });
        expect(await store.getSettings(a.id)).toEqual({ readReceipts: false, showLastSeen: true });
        expect(await store.getLastSeen(a.id)).toBeNull();
        await store.setLastSeen(a.id, now());
        expect(await store.getLastSeen(a.id)).toBe(now().toISOString());
      });
    });

    it('answers ping and prunes without error', async () => {
      await store.ping();
      await store.prune();
      expect(store.description).toMatch(/\S/);
    });
  });
}
