// The Store contract: one suite that every Store implementation must pass. An implementation's
// test file calls `storeContract` with a factory; cases it cannot meet are skipped there, with a reason.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, StreamPage } from '../../src/storage/store.js';
import { UsernameTakenError } from '../../src/storage/store.js';

export interface StoreFactoryOptions {
  now?: () => Date;
  idempotencyWindowMs?: number;
}

export type StoreFactory = (options: StoreFactoryOptions) => Promise<Store>;

const hour = 3600_000;

/** The content of each event of a stream page (undefined for events without one). */
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

    it('answers ping and prunes without error', async () => {
      await store.ping();
      await store.prune();
      expect(store.description).toMatch(/\S/);
    });
  });
}
