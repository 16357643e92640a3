// The Presence contract against LocalPresence (one node) and RedisPresence (several "nodes": each
// a bus and a presence on the bus' publisher connection, as main.ts makes them, with a short
// liveness TTL) on a real Redis (REDIS_URL), each test under a random key prefix. Then what only
// RedisPresence promises: its keys, its liveness TTL, healing after Redis lost its state, and
// logging its failures.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalPresence } from '../../src/bus/presence.js';
import { openRedisBus, type RedisBus, type RedisLogger } from '../../src/bus/redis-bus.js';
import { RedisPresence, type RedisPresenceOptions } from '../../src/bus/redis-presence.js';
import { serviceUrl } from '../helpers/services.js';
import { until } from './bus.contract.js';
import { presenceContract, SKIPPABLE_CASES, type SkippableCase } from './presence.contract.js';

const url = serviceUrl('REDIS_URL', 'redis:');

const quiet: RedisLogger = { info: () => {}, warn: () => {} };

presenceContract(
  'local',
  {
    open: async (n) => {
      expect(n).toBe(1);
      return [new LocalPresence()];
    },
    settle: async () => {}, // every effect is applied inside the call
  },
  {
    skip: Object.fromEntries(
      Object.keys(SKIPPABLE_CASES).map((id) => [
        id,
        'LocalPresence is one node by definition and shares no state',
      ]),
    ) as Record<SkippableCase, string>,
  },
);

describe.skipIf(!url)('RedisPresence', () => {
  const redisUrl = url!;
  let admin: Redis;
  let prefix: string;
  /** Every key prefix a test used: its keys are deleted after it. */
  const prefixes: string[] = [];
  const clients: Redis[] = [];
  const buses: RedisBus[] = [];
  const presences: RedisPresence[] = [];

  /** A node: its own connection (as another process would have) and presence. */
  const node = (nodeId: string, options: Partial<RedisPresenceOptions> = {}) => {
    const client = new Redis(redisUrl, { connectionName: `test-presence-${nodeId}` });
    clients.push(client);
    const presence = new RedisPresence(client, { nodeId, prefix, logger: quiet, ...options });
    presences.push(presence);
    return presence;
  };
  const members = (userId: string) => admin.smembers(`${prefix}presence:${userId}`);
  const liveness = (nodeId: string) => `${prefix}node:${nodeId}`;

  beforeAll(() => {
    admin = new Redis(redisUrl);
  });
  afterEach(async () => {
    // Presence before the bus, as in main.ts: it uses the bus' connection.
    await Promise.all(presences.splice(0).map((p) => p.close()));
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    await Promise.all(clients.splice(0).map((c) => (c.status === 'end' ? undefined : c.quit())));
    for (const used of prefixes.splice(0)) {
      const keys = await admin.keys(`${used}*`);
      if (keys.length > 0) await admin.del(...keys);
    }
  });
  afterAll(async () => {
    await admin.quit();
  });
  // A random prefix per test keeps runs and tests apart.
  const fresh = () => {
    prefix = `test:${randomUUID()}:`;
    prefixes.push(prefix);
    return prefix;
  };

  // The contract's nodes are made as main.ts makes them (a presence on its bus' publisher
  // connection, which has no offline queue), with a liveness TTL short enough to wait out.
  const contractTtlMs = 1_500;
  const busOf = new WeakMap<RedisPresence, RedisBus>();
  presenceContract(
    'redis',
    {
      open: async (n) => {
        const shared = fresh();
        const opened = await Promise.all(
          Array.from({ length: n }, () =>
            openRedisBus({ url: redisUrl, channel: `${shared}events`, logger: quiet }),
          ),
        );
        buses.push(...opened);
        return opened.map((bus) => {
          const presence = new RedisPresence(bus.client, {
            nodeId: bus.nodeId,
            prefix: shared,
            ttlMs: contractTtlMs,
            refreshMs: 250,
            logger: quiet,
          });
          presences.push(presence);
          busOf.set(presence, bus);
          return presence;
        });
      },
      // Its liveness script runs after every earlier command on the node's connection.
      settle: (presence) => presence.refresh(),
      // Its connection to Redis is gone for good: refreshes and queries fail from now on.
      cutOff: (presence) => busOf.get(presence)!.client.disconnect(),
      stopBoundMs: contractTtlMs,
    },
    {},
  );

  it('keeps a set of the node ids that have the user, and a liveness key per node', async () => {
    fresh();
    const [a, b] = [node('A'), node('B')];
    a.online('u1');
    await a.refresh();
    expect(await members('u1')).toEqual(['A']);
    b.online('u1');
    await b.refresh();
    expect((await members('u1')).sort()).toEqual(['A', 'B']);
    a.offline('u1');
    await a.refresh();
    expect(await members('u1')).toEqual(['B']);
    expect(await admin.exists(liveness('A'), liveness('B'))).toBe(2);
    b.offline('u1');
    await b.refresh();
    expect(await members('u1')).toEqual([]);
  });

  it('stops counting a node whose liveness key is gone, cleans up, and heals on refresh', async () => {
    fresh();
    const [a, b] = [node('A'), node('B')];
    a.online('u1');
    await a.refresh();
    const ttl = await admin.pttl(liveness('A'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
    await admin.del(liveness('A')); // as if A had stopped refreshing for longer than the TTL
    expect(await b.isOnline('u1')).toBe(false);
    expect(await members('u1')).toEqual([]); // the dead member was removed on the way
    // A was alive after all (a stuck event loop): its next refresh finds its key gone and
    // writes its whole state again.
    await a.refresh();
    expect(await admin.exists(liveness('A'))).toBe(1);
    expect(await b.isOnline('u1')).toBe(true);
  });

  it('stops counting a node that stops refreshing, once its TTL runs out', async () => {
    fresh();
    const a = node('A', { ttlMs: 200, refreshMs: 3_600_000 });
    const b = node('B');
    a.online('u1');
    await a.refresh();
    expect(await b.isOnline('u1')).toBe(true);
    await until(async () => !(await b.isOnline('u1')), 'A’s liveness key to expire');
    expect(await admin.exists(liveness('A'))).toBe(0);
  });

  it('deletes its entries and its liveness key on close, and writes nothing after it', async () => {
    fresh();
    const [a, b] = [node('A'), node('B')];
    a.online('u1');
    a.online('u2');
    a.online('u3');
    a.offline('u3');
    await a.refresh();
    expect(await b.isOnline('u2')).toBe(true);
    await a.close();
    await a.close();
    // Withdrawn once close resolves, without waiting for anything else.
    expect(await admin.exists(liveness('A'))).toBe(0);
    expect(await members('u1')).toEqual([]);
    expect(await members('u2')).toEqual([]);
    expect(await b.isOnline('u1')).toBe(false);
    a.online('u4');
    expect(await a.isOnline('u4')).toBe(false);
    expect(await members('u4')).toEqual([]);
  });

  it('writes its state again after a reconnect to a Redis that lost it', async () => {
    fresh();
    const [a, b] = [node('A'), node('B')];
    a.online('u1');
    await a.refresh();
    // Redis restarted empty, and A's connection broke.
    await admin.del(liveness('A'), `${prefix}presence:u1`);
    const list = String(await admin.client('LIST'));
    const id = /\bid=(\d+)[^\n]*name=test-presence-A\b/.exec(list)?.[1];
    expect(id).toBeDefined();
    await admin.client('KILL', 'ID', id!);
    await until(() => b.isOnline('u1'), 'u1 online again after A reconnected');
    expect(await members('u1')).toEqual(['A']);
  });

  it('works on the bus’ publisher connection (no offline queue)', async () => {
    fresh();
    const bus = await openRedisBus({ url: redisUrl, channel: `${prefix}events`, logger: quiet });
    try {
      const a = new RedisPresence(bus.client, { nodeId: bus.nodeId, prefix, logger: quiet });
      presences.push(a);
      const b = node('B');
      a.online('u1');
      await a.refresh();
      expect(await b.isOnline('u1')).toBe(true);
      expect(a.description).toBe(bus.description);
      await a.close();
      expect(await b.isOnline('u1')).toBe(false);
    } finally {
      await bus.close();
    }
  });

  it('answers from its own node when Redis cannot be asked, and logs why', async () => {
    fresh();
    const warnings: string[] = [];
    const logger: RedisLogger = { info: () => {}, warn: (_obj, msg) => warnings.push(msg) };
    const a = node('A', { logger });
    a.online('u1');
    await a.refresh();
    clients[0]!.disconnect();
    expect(await a.isOnline('u1')).toBe(true);
    expect(await a.isOnline('u2')).toBe(false);
    expect(warnings).toEqual([`redis presence ${a.description}: isOnline failed`]);
  });
});
