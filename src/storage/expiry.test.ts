import { describe, expect, it } from 'vitest';
import { chunks, lastIdBefore, type Stamp } from './expiry.js';

/** Messages with ids 1..n (every third missing) created at t = id seconds. */
function table(n: number) {
  const rows: Stamp[] = [];
  for (let id = 1; id <= n; id++)
    if (id % 3 !== 0) rows.push({ id, createdAt: new Date(id * 1000).toISOString() });
  let seeks = 0;
  const seek = async (id: number) => {
    seeks += 1;
    return rows.find((r) => r.id >= id);
  };
  return { rows, seek, seeks: () => seeks };
}

describe('lastIdBefore', () => {
  it('finds the newest message older than the cutoff in O(log n) seeks', async () => {
    const t = table(100_000);
    const cutoff = new Date(50_000.5 * 1000).toISOString();
    expect(await lastIdBefore(0, 100_000, cutoff, t.seek)).toBe(50_000);
    expect(t.seeks()).toBeLessThan(40);
  });

  it('answers undefined when nothing after lo is old enough, or there is nothing after lo', async () => {
    const t = table(100);
    expect(await lastIdBefore(10, 100, new Date(5_000).toISOString(), t.seek)).toBeUndefined();
    expect(await lastIdBefore(100, 100, new Date(1e9).toISOString(), t.seek)).toBeUndefined();
  });

  it('gives hi when every message up to hi is old enough, and respects lo', async () => {
    const t = table(100);
    expect(await lastIdBefore(0, 100, new Date(1e9).toISOString(), t.seek)).toBe(100);
    expect(await lastIdBefore(40, 100, new Date(60_500).toISOString(), t.seek)).toBe(59);
  });
});

describe('chunks', () => {
  it('covers (lo, hi] in ranges of at most size', () => {
    expect([...chunks(0, 12, 5)]).toEqual([
      [0, 5],
      [5, 10],
      [10, 12],
    ]);
    expect([...chunks(7, 7, 5)]).toEqual([]);
  });
});
