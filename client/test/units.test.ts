// The library's parts on their own: backoff delays, locks, storages (memory, IndexedDB through
// fake-indexeddb, Web Storage), ids and Retry-After.
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { parseRetryAfter } from '../src/errors.js';
import {
  broadcastChannelLock,
  compareIds,
  indexedDbStorage,
  memoryStorage,
  processLock,
  webStorageTokenStore,
  type ClientStorage,
  type OutboxEntry,
  type RefreshLock,
} from '../src/index.js';
import { sleep, uniqueName } from './support.js';

describe('Backoff', () => {
  it('is full jitter: uniform below a ceiling that doubles up to the cap', () => {
    const top = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6].map(() => top.next())).toEqual([99, 199, 399, 799, 999, 999]);
    const bottom = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    expect([1, 2, 3].map(() => bottom.next())).toEqual([0, 0, 0]);
    bottom.reset();
    expect(bottom.attempt).toBe(0);
  });

  it('never comes back before Retry-After', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.5 });
    expect(b.next(3)).toBe(3000);
    expect(b.next(0)).toBe(100);
  });

  it('defaults to 0.5 s doubling up to 30 s (docs/protocol.md)', () => {
    const b = new Backoff({ random: () => 0.999999 });
    const delays = Array.from({ length: 10 }, () => b.next());
    expect(delays[0]).toBe(499);
    expect(delays.at(-1)).toBe(29_999);
  });
});

describe('locks', () => {
  /** Runs `n` overlapping critical sections; returns the most that ever ran at once. */
  async function overlap(locks: RefreshLock[], n: number): Promise<number> {
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        locks[i % locks.length]!.run('refresh', async () => {
          inside += 1;
          most = Math.max(most, inside);
          await sleep(5);
          inside -= 1;
        }),
      ),
    );
    return most;
  }

  it('processLock: one at a time, and a failure releases it', async () => {
    const lock = processLock();
    expect(await overlap([lock], 5)).toBe(1);
    await expect(lock.run('x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await lock.run('x', async () => 'next')).toBe('next');
  });

  it('broadcastChannelLock: one holder among three participants ("tabs")', async () => {
    const channel = `test-${uniqueName()}`;
    const locks = [1, 2, 3].map(() => broadcastChannelLock({ channel, windowMs: 30 }));
    try {
      expect(await overlap(locks, 6)).toBe(1);
    } finally {
      for (const l of locks) l.close?.();
    }
  });
});

function entry(userId: string, clientId: string, queuedAt: number, seq: number): OutboxEntry {
  return {
    userId,
    clientId,
    queuedAt,
    seq,
    frame: { receiver: 'bob', content: clientId, clientId },
  };
}

describe.each([
  ['memoryStorage', () => memoryStorage()],
  ['indexedDbStorage', () => indexedDbStorage({ indexedDB: new IDBFactory(), name: 'test' })],
])('%s', (_name, make: () => ClientStorage) => {
  it('keeps each user’s outbox in queue order, and the cursor', async () => {
    const s = make();
    await s.putOutbox(entry('u1', 'c', 2, 0));
    await s.putOutbox(entry('u1', 'a', 1, 5));
    await s.putOutbox(entry('u1', 'b', 2, 1));
    await s.putOutbox(entry('u2', 'z', 0, 0));
    expect((await s.loadOutbox('u1')).map((e) => e.clientId)).toEqual(['a', 'c', 'b']);
    await s.deleteOutbox('u1', 'c');
    expect((await s.loadOutbox('u1')).map((e) => e.clientId)).toEqual(['a', 'b']);
    expect(await s.loadCursor('u1')).toBeNull();
    await s.saveCursor('u1', '41');
    await s.saveCursor('u1', '42');
    expect(await s.loadCursor('u1')).toBe('42');
    await s.clearUser('u1');
    expect(await s.loadOutbox('u1')).toEqual([]);
    expect(await s.loadCursor('u1')).toBeNull();
    expect((await s.loadOutbox('u2')).map((e) => e.frame)).toEqual([
      { receiver: 'bob', content: 'z', clientId: 'z' },
    ]);
    s.close?.();
  });
});

describe('indexedDbStorage', () => {
  it('outlives the page: a second instance on the same database sees what the first wrote', async () => {
    const factory = new IDBFactory();
    const first = indexedDbStorage({ indexedDB: factory });
    await first.putOutbox(entry('u1', 'kept', 1, 0));
    await first.saveCursor('u1', '7');
    first.close?.();
    const second = indexedDbStorage({ indexedDB: factory });
    expect((await second.loadOutbox('u1')).map((e) => e.clientId)).toEqual(['kept']);
    expect(await second.loadCursor('u1')).toBe('7');
    second.close?.();
  });
});

describe('webStorageTokenStore', () => {
  it('keeps the session as JSON under its key', async () => {
    const map = new Map<string, string>();
    const storage = {
      getItem: (k: string) => map.get(k) ?? null,
      setItem: (k: string, v: string) => void map.set(k, v),
      removeItem: (k: string) => void map.delete(k),
    };
    const tokens = webStorageTokenStore(storage, 'k');
    const session = {
      accessToken: 'a',
      refreshToken: 'r',
      expiresAt: 1,
      lifetimeMs: 1000,
      user: { id: '1', username: 'u', createdAt: 'x' },
    };
    await tokens.set(session);
    expect(await webStorageTokenStore(storage, 'k').get()).toEqual(session);
    await tokens.clear();
    expect(await tokens.get()).toBeNull();
    map.set('k', 'not json');
    expect(await tokens.get()).toBeNull();
  });
});

describe('ids and Retry-After', () => {
  it('compares ids as numbers of any length', () => {
    expect(compareIds('9', '10')).toBeLessThan(0);
    expect(compareIds('9999999999999999', '9999999999999998')).toBeGreaterThan(0);
    expect(compareIds('42', '42')).toBe(0);
  });

  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5);
  });
});
