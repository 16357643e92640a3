// The Limits contract against MemoryLimits (one node) and RedisLimits (several "nodes", each its
// own connection to a real Redis, REDIS_URL), each case under a random key prefix. Then what only
// RedisLimits promises: its keys expire, and a take costs a round trip once per lease, not per
// take.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RateBuckets } from '../../src/limits/limits.js';
import { MemoryLimits } from '../../src/limits/memory-limits.js';
import { LeasedBuckets, RedisLimits } from '../../src/limits/redis-limits.js';
import type { RedisLogger } from '../../src/bus/redis-bus.js';
import { serviceUrl } from '../helpers/services.js';
import { limitsContract, SKIPPABLE_CASES, type SkippableCase } from './limits.contract.js';

const url = serviceUrl('REDIS_URL', 'redis:');
const quiet: RedisLogger = { info: () => {}, warn: () => {} };

limitsContract(
  'memory',
  {
    open: async (n) => {
      expect(n).toBe(1);
      return [new MemoryLimits()];
    },
    settle: async () => {},
    lease: () => 0,
  },
  {
    skip: Object.fromEntries(
      Object.keys(SKIPPABLE_CASES).map((id) => [
        id,
        'MemoryLimits is one node by definition and shares no state',
      ]),
    ) as Record<SkippableCase, string>,
  },
);

describe.skipIf(!url)('RedisLimits', () => {
  const redisUrl = url!;
  let admin: Redis;
  const prefixes: string[] = [];
  const clients: Redis[] = [];
  const nodeClient = new WeakMap<RedisLimits, Redis>();

  /** `n` nodes on one prefix, each with its own connection, configured as main.ts does. */
  const nodes = (n: number, prefix = `test:${randomUUID()}:`) => {
    prefixes.push(prefix);
    return Array.from({ length: n }, () => {
      // As the bus' publisher: no offline queue, so an outage fails fast.
      const client = new Redis(redisUrl, { enableOfflineQueue: false, lazyConnect: false });
      clients.push(client);
      const limits = new RedisLimits(client, { prefix, idleMs: 100, logger: quiet });
      nodeClient.set(limits, client);
      return limits;
    });
  };
  const ready = async (limits: RedisLimits[]) => {
    await Promise.all(
      limits.map(
        (l) =>
          new Promise<void>((resolve) => {
            const c = nodeClient.get(l)!;
            if (c.status === 'ready') resolve();
            else c.once('ready', () => resolve());
          }),
      ),
    );
    return limits;
  };

  beforeAll(() => {
    admin = new Redis(redisUrl);
  });
  afterEach(async () => {
    // A client a case cut off cannot say goodbye.
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    for (const used of prefixes.splice(0)) {
      const keys = await admin.keys(`${used}*`);
      if (keys.length > 0) await admin.del(...keys);
    }
  });
  afterAll(async () => {
    await admin.quit();
  });

  limitsContract('redis', {
    open: async (n) => ready(nodes(n)),
    settle: (buckets: RateBuckets) => (buckets as LeasedBuckets).settled(),
    lease: (buckets: RateBuckets) => (buckets as LeasedBuckets).lease,
    cutOff: (limits) => nodeClient.get(limits)!.disconnect(),
  });

  it('leases a share of the burst (at least one token, at most the burst)', async () => {
    const [a] = await ready(nodes(1));
    expect(a!.buckets('x', { ratePerSec: 20, burst: 100 }).lease).toBe(10);
    expect(a!.buckets('x', { ratePerSec: 20, burst: 3 }).lease).toBe(1);
    const whole = new RedisLimits(admin, { leaseFraction: 1 });
    expect(whole.buckets('x', { ratePerSec: 1, burst: 7 }).lease).toBe(7);
  });

  it('asks Redis once per lease, not once per take', async () => {
    const [a] = await ready(nodes(1));
    const buckets = a!.buckets('calls', { ratePerSec: 1000, burst: 1000 }); // lease 100
    let calls = 0;
    const client = a!.client;
    const original = client.chatLimitsLease.bind(client);
    client.chatLimitsLease = (...args: Parameters<typeof original>) => {
      calls += 1;
      return original(...args);
    };
    for (let i = 0; i < 500; i++) {
      expect(buckets.take('k')).toBe(true);
      if (i % 10 === 0) await buckets.settled();
    }
    await buckets.settled();
    expect(calls).toBeGreaterThanOrEqual(5);
    expect(calls).toBeLessThanOrEqual(12);
  });

  it('keeps its keys under the prefix, and lets them expire', async () => {
    const prefix = `test:${randomUUID()}:`;
    const [a] = await ready(nodes(1, prefix));
    const buckets = a!.buckets('exp', { ratePerSec: 10, burst: 5 });
    buckets.take('k');
    await buckets.settled();
    await a!.attempt([
      { key: 'c', backoff: { free: 1, baseMs: 10, maxMs: 10, forgetMs: 5_000 }, enforce: true },
    ]);
    await a!.remember('m', 5_000);
    const keys = (await admin.keys(`${prefix}*`)).sort();
    expect(keys).toEqual([`${prefix}bucket:exp:k`, `${prefix}count:c`, `${prefix}mark:m`]);
    for (const key of keys) {
      const ttl = await admin.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(5_000 + 1_000);
    }
  });

  it('logs a Redis failure once, not once per take', async () => {
    const lines: string[] = [];
    const client = new Redis(redisUrl, { enableOfflineQueue: false });
    clients.push(client);
    await new Promise((resolve) => client.once('ready', resolve));
    const limits = new RedisLimits(client, {
      prefix: `test:${randomUUID()}:`,
      logger: { info: () => {}, warn: (_o, msg) => lines.push(msg) },
    });
    client.disconnect();
    const buckets = limits.buckets('log', { ratePerSec: 1, burst: 5 });
    for (let i = 0; i < 50; i++) {
      buckets.take(`k${i}`);
      await buckets.settled();
    }
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/redis limits .* lease failed/);
  });
});
