// Presence: LocalPresence, and RedisPresence with several "nodes" (instances with their own node
// id and connection) on a real Redis (REDIS_URL), each test under a random key prefix.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalPresence } from '../../src/bus/presence.js';
import { openRedisBus, type RedisLogger } from '../../src/bus/redis-bus.js';
import { RedisPresence, type RedisPresenceOptions } from '../../src/bus/redis-presence.js';
import { serviceUrl } from '../helpers/services.js';
import { until } from './bus.contract.js';

const url = serviceUrl('REDIS_URL', 'redis:');

const quiet: RedisLogger = { info: () => {}, warn: () => {} };

describe('LocalPresence', () => {
  it('answers from the users reported online, and forgets them on close', async () => {
    const presence = new LocalPresence();
    expect(await presence.isOnline('u1')).toBe(false);
    presence.online('u1');
    presence.online('u2');
    expect(await presence.isOnline('u1')).toBe(true);
    presence.offline('u1');
    expect(await presence.isOnline('u1')).toBe(false);
    expect(await presence.isOnline('u2')).toBe(true);
    await presence.close();
    await presence.close();
    expect(await presence.isOnline('u2')).toBe(false);
    presence.online('u3');
    expect(await presence.isOnline('u3')).toBe(false);
  });
});

describe.skipIf(!url)('RedisPresence', () => {
  const redisUrl = url!;
  let admin: Redis;
  let prefix: string;
  const clients: Redis[] = [];
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
    await Promise.all(presences.splice(0).map((p) => p.close()));
    await Promise.all(clients.splice(0).map((c) => (c.status === 'end' ? undefined : c.quit())));
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  });
  afterAll(async () => {
    await admin.quit();
  });
  // A random prefix per test keeps runs and tests apart.
  const fresh = () => {
    prefix = `test:${randomUUID()}:`;
  };

  it('sees a user online on node A from node B, and offline once A reports them gone', async () => {
    fresh();
    const [a, b] = [node('A'), node('B')];
    expect(await b.isOnline('u1')).toBe(false);
    a.online('u1');
    expect(await a.isOnline('u1')).toBe(true); // at once on its own node
    // Per node, effects apply in call order: once A's refresh is done, so is its `online`.
    await a.refresh();
    expect(await b.isOnline('u1')).toBe(true);
    expect(await members('u1')).toEqual(['A']);
    a.offline('u1');
    await a.refresh();
    expect(await b.isOnline('u1')).toBe(false);
    expect(await a.isOnline('u1')).toBe(false);
  });

  it('keeps a user online while another node still has them', async () => {
    fresh();
    const [a, b, c] = [node('A'), node('B'), node('C')];
    a.online('u1');
    b.online('u1');
    await Promise.all([a.refresh(), b.refresh()]);
    a.offline('u1');
    await a.refresh();
    expect(await c.isOnline('u1')).toBe(true);
    expect(await members('u1')).toEqual(['B']);
    b.offline('u1');
    await b.refresh();
    expect(await c.isOnline('u1')).toBe(false);
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

  it('removes its users and its liveness key on close, and ignores calls after it', async () => {
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

  it('answers from its own node when Redis cannot be asked', async () => {
    fresh();
    const a = node('A');
    a.online('u1');
    await a.refresh();
    clients[0]!.disconnect();
    expect(await a.isOnline('u1')).toBe(true);
    expect(await a.isOnline('u2')).toBe(false);
  });
});
