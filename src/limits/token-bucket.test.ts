import { describe, expect, it } from 'vitest';
import { TokenBuckets } from './token-bucket.js';

describe('TokenBuckets', () => {
  it('allows a burst, then the sustained rate', () => {
    let now = 0;
    const buckets = new TokenBuckets(10, 5, () => now);
    for (let i = 0; i < 5; i++) expect(buckets.take('u')).toBe(true);
    expect(buckets.take('u')).toBe(false);
    now = 100; // one token refilled at 10/s
    expect(buckets.take('u')).toBe(true);
    expect(buckets.take('u')).toBe(false);
    now = 10_000; // refill caps at the burst
    for (let i = 0; i < 5; i++) expect(buckets.take('u')).toBe(true);
    expect(buckets.take('u')).toBe(false);
    expect(buckets.take('other')).toBe(true);
  });

  it('sweeps only buckets that have refilled', () => {
    let now = 0;
    const buckets = new TokenBuckets(1, 2, () => now);
    buckets.take('u');
    buckets.take('u');
    now = 1000; // one token back: not full, kept
    buckets.sweep();
    buckets.take('u');
    expect(buckets.take('u')).toBe(false);
    now = 10_000;
    buckets.sweep();
    expect(buckets.take('u')).toBe(true);
  });
});
