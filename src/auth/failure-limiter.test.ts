import { describe, expect, it } from 'vitest';
import { FailureLimiter } from './failure-limiter.js';

describe('FailureLimiter', () => {
  it('blocks a key after `limit` failures until its window ends', () => {
    let now = 0;
    const limiter = new FailureLimiter(3, 60_000, () => now);
    limiter.fail('a');
    limiter.fail('a');
    expect(limiter.blockedFor('a')).toBe(0);
    limiter.fail('a');
    expect(limiter.blockedFor('a')).toBe(60);
    expect(limiter.blockedFor('b')).toBe(0);
    now = 30_000;
    expect(limiter.blockedFor('a')).toBe(30);
    now = 60_000;
    expect(limiter.blockedFor('a')).toBe(0);
  });

  it('forgets failures on reset', () => {
    const limiter = new FailureLimiter(1, 1000, () => 0);
    limiter.fail('a');
    expect(limiter.blockedFor('a')).toBeGreaterThan(0);
    limiter.reset('a');
    expect(limiter.blockedFor('a')).toBe(0);
  });
});
