import { describe, expect, it } from 'vitest';
import { MemoryLimits } from '../limits/memory-limits.js';
import {
  accountId,
  DeviceCookies,
  LoginThrottle,
  sourceAddress,
  type LoginSource,
  type LoginThrottlePolicy,
} from './login-throttle.js';

const policy: LoginThrottlePolicy = {
  sourceFailures: 3,
  accountFailures: 10,
  delayMs: 1_000,
  maxDelayMs: 8_000,
  forgetMs: 3_600_000,
  knownMs: 86_400_000,
};
const SECRET = 'a secret of at least thirty-two characters';

function setup(p: Partial<LoginThrottlePolicy> = {}) {
  const clock = { now: 1_000_000 };
  const now = () => clock.now;
  const throttle = new LoginThrottle(new MemoryLimits(now), { ...policy, ...p }, SECRET, now);
  /** One attempt; `right` reports it as a success. The wait in seconds, or 0, and the cookie. */
  const attempt = async (from: LoginSource, right = false, user = 'alice') => {
    const check = await throttle.check(user, from);
    if (!check.ok) return { wait: check.retryAfterSeconds, limit: check.limit, cookie: undefined };
    const cookie = right ? await throttle.succeeded(check.pass) : undefined;
    return { wait: 0, limit: 0, cookie };
  };
  return { clock, throttle, attempt };
}

const A = { address: '198.51.100.1' };
const B = { address: '198.51.100.2' };

describe('LoginThrottle', () => {
  it('gives one source a few free failures, then waits that double up to the most', async () => {
    const { clock, attempt } = setup();
    for (let i = 0; i < 3; i++) expect((await attempt(A)).wait).toBe(0);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const refused = await attempt(A);
      waits.push(refused.wait);
      expect(refused.limit).toBe(3);
      clock.now += refused.wait * 1000;
      expect((await attempt(A)).wait).toBe(0); // waited it out: the attempt is let through
    }
    expect(waits).toEqual([1, 2, 4, 8, 8, 8]);
  });

  it('never locks: the owner with the right password gets in after the wait', async () => {
    const { clock, attempt } = setup();
    for (let i = 0; i < 3; i++) await attempt(A);
    const refused = await attempt(A, true);
    expect(refused.wait).toBe(1);
    clock.now += 1000;
    expect((await attempt(A, true)).cookie).toBeDefined();
    // A success clears the source's failures: three free ones again.
    for (let i = 0; i < 3; i++) expect((await attempt(A)).wait).toBe(0);
    expect((await attempt(A)).wait).toBe(1);
  });

  it('keeps sources apart: one address slowed down leaves another untouched', async () => {
    const { attempt } = setup();
    for (let i = 0; i < 3; i++) await attempt(A);
    expect((await attempt(A)).wait).toBeGreaterThan(0);
    expect((await attempt(B)).wait).toBe(0);
    expect((await attempt(A, false, 'bob')).wait).toBe(0);
  });

  it('treats any spelling of a name as one account, and unknown names like real ones', async () => {
    const { attempt } = setup();
    await attempt(A, false, 'Ghost');
    await attempt(A, false, 'GHOST');
    await attempt(A, false, 'ghost');
    expect((await attempt(A, false, 'gHoSt')).wait).toBe(1);
  });

  it('forgets failures after a quiet period', async () => {
    const { clock, attempt } = setup({ forgetMs: 60_000 });
    for (let i = 0; i < 3; i++) await attempt(A);
    expect((await attempt(A)).wait).toBe(1);
    clock.now += 60_000;
    for (let i = 0; i < 3; i++) expect((await attempt(A)).wait).toBe(0);
  });

  it('slows unknown sources once the account has its ceiling of failures from all sources', async () => {
    const { clock, attempt } = setup();
    expect((await attempt({ address: '203.0.113.9' }, true)).cookie).toBeDefined(); // known now
    // A distributed attacker: three failures from each of four addresses, ten count.
    let failures = 0;
    for (let host = 1; failures < 10; host++)
      for (let i = 0; i < 3 && failures < 10; i++) {
        expect((await attempt({ address: `192.0.2.${host}` })).wait).toBe(0);
        failures += 1;
      }
    // A fresh address is slowed down at its first attempt, and says by which limit.
    const fresh = await attempt({ address: '192.0.2.200' }, true);
    expect(fresh).toMatchObject({ wait: 1, limit: 10 });
    // The owner's known address is not.
    expect((await attempt({ address: '203.0.113.9' }, true)).cookie).toBeDefined();
    // Unknown sources share the account's growing delay: one attempt per wait for all of them.
    clock.now += 1000;
    expect((await attempt({ address: '192.0.2.201' })).wait).toBe(0);
    expect((await attempt({ address: '192.0.2.202' })).wait).toBe(2);
  });

  it('does not count the owner’s successful logins against the account ceiling', async () => {
    const { attempt } = setup({ accountFailures: 2 });
    for (let i = 0; i < 5; i++) expect((await attempt(A, true)).cookie).toBeDefined();
    expect((await attempt({ address: '192.0.2.50' })).wait).toBe(0);
    expect((await attempt({ address: '192.0.2.51' })).wait).toBe(0);
    expect((await attempt({ address: '192.0.2.52' })).wait).toBe(1);
  });

  it('takes a valid device cookie as a known source with failures of its own', async () => {
    const { attempt } = setup({ accountFailures: 3 });
    const { cookie } = await attempt(A, true);
    // Strangers reach the account ceiling.
    for (let i = 0; i < 3; i++) await attempt({ address: `192.0.2.${i}` });
    expect((await attempt({ address: '192.0.2.99' })).wait).toBe(1);
    // The device from a new address is not slowed, and its cookie is renewed with the same id.
    const renewed = await attempt({ address: '192.0.2.99', device: cookie }, true);
    expect(renewed.cookie?.split('.')[0]).toBe(cookie!.split('.')[0]);
    // A device has its own few tries: someone holding it cannot guess on without waiting.
    const stolen = { address: '192.0.2.123', device: cookie };
    for (let i = 0; i < 3; i++) expect((await attempt(stolen)).wait).toBe(0);
    expect((await attempt(stolen)).wait).toBe(1);
  });

  it('ignores a cookie of another account, a tampered one and an expired one', async () => {
    const slow = { delayMs: 600_000, maxDelayMs: 600_000 }; // longer than the cookie lives
    const { clock, attempt } = setup({ accountFailures: 1, knownMs: 60_000, ...slow });
    const { cookie: bobs } = await attempt(A, true, 'bob');
    const { cookie: alices } = await attempt(A, true, 'alice');
    await attempt({ address: '192.0.2.1' }); // the account ceiling of alice is reached
    const tampered = alices!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    for (const device of [bobs!, tampered, 'garbage', `${alices}.x`]) {
      expect((await attempt({ address: '192.0.2.2', device })).wait).toBeGreaterThan(0);
    }
    expect((await attempt({ address: '192.0.2.2', device: alices })).wait).toBe(0);
    clock.now += 60_000;
    expect((await attempt({ address: '192.0.2.3', device: alices })).wait).toBeGreaterThan(0);
  });

  it('forgets a known address after its time', async () => {
    const slow = { delayMs: 600_000, maxDelayMs: 600_000 };
    const { clock, attempt } = setup({ accountFailures: 1, knownMs: 60_000, ...slow });
    await attempt(A, true);
    await attempt({ address: '192.0.2.1' });
    expect((await attempt(A)).wait).toBe(0);
    clock.now += 60_000;
    expect((await attempt(A)).wait).toBeGreaterThan(0);
  });

  it('takes an undecided attempt back from both counters', async () => {
    const { throttle, attempt } = setup({ accountFailures: 3 });
    for (let i = 0; i < 5; i++) {
      const check = await throttle.check('alice', A);
      expect(check.ok).toBe(true);
      if (check.ok) await throttle.undecided(check.pass);
    }
    for (let i = 0; i < 3; i++) expect((await attempt(A)).wait).toBe(0);
    expect((await attempt(A)).wait).toBe(1);
  });

  it('counts parallel attempts one by one', async () => {
    const { throttle } = setup();
    const checks = await Promise.all(Array.from({ length: 10 }, () => throttle.check('alice', A)));
    expect(checks.filter((c) => c.ok)).toHaveLength(3);
  });
});

describe('sourceAddress', () => {
  it('keeps IPv4, unwraps IPv4-mapped IPv6, and takes IPv6 by its /64', () => {
    expect(sourceAddress('192.0.2.1')).toBe('192.0.2.1');
    expect(sourceAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(sourceAddress('::ffff:c000:201')).toBe('192.0.2.1');
    expect(sourceAddress('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(sourceAddress('2001:DB8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(sourceAddress('2001:0db8:0001:0002:0:0:0:1%eth0')).toBe('2001:db8:1:2::/64');
    expect(sourceAddress('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceAddress('::1')).toBe('0:0:0:0::/64');
    expect(sourceAddress('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(sourceAddress('unknown')).toBe('unknown');
  });
});

describe('accountId and DeviceCookies', () => {
  it('names an account by a short hash of its lower-case name', () => {
    expect(accountId('Alice')).toBe(accountId('alice'));
    expect(accountId('alice')).not.toBe(accountId('bob'));
    expect(accountId('x'.repeat(60_000))).toHaveLength(22);
  });

  it('checks cookies made with the same secret only', () => {
    const mine = new DeviceCookies(SECRET, 60_000);
    const theirs = new DeviceCookies(`${SECRET}!`, 60_000);
    const cookie = mine.issue('acct');
    expect(mine.verify('acct', cookie)).toBe(cookie.split('.')[0]);
    expect(theirs.verify('acct', cookie)).toBeUndefined();
    expect(mine.verify('other', cookie)).toBeUndefined();
  });
});
