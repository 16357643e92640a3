// The Bus contract against Redis (REDIS_URL; scripts/services.sh starts a throw-away server), plus
// what only the Redis bus promises: readable start-up failures without secrets, failed publishes
// that reject without going unhandled, reconnects, and robustness to foreign messages.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BusEvent } from '../../src/bus/bus.js';
import {
  describeRedisUrl,
  openRedisBus,
  type RedisBus,
  type RedisLogger,
} from '../../src/bus/redis-bus.js';
import { serviceUrl } from '../helpers/services.js';
import { busContract, until } from './bus.contract.js';

const url = serviceUrl('REDIS_URL', 'redis:');

/** A logger that keeps its lines, so tests can check what was logged (and what was not). */
function memoryLogger() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const logger: RedisLogger = {
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
  };
  return { logger, lines, text: () => JSON.stringify(lines) };
}

const event = (id: string): BusEvent => ({
  type: 'deliver',
  userIds: ['1'],
  messageId: id,
  frame: `{"type":"message","id":"${id}"}`,
});

describe('describeRedisUrl', () => {
  it('keeps scheme, host and port, and drops credentials and the database', () => {
    expect(describeRedisUrl('redis://user:s3cret@cache.internal:6380/2')).toBe(
      'redis://cache.internal:6380',
    );
    expect(describeRedisUrl('rediss://:s3cret@cache.internal')).toBe(
      'rediss://cache.internal:6379',
    );
  });

  it('rejects what is not a Redis URL without repeating it', () => {
    expect(() => describeRedisUrl('http://user:s3cret@host')).toThrow(/redis:\/\//);
    expect(() => describeRedisUrl('not a url s3cret')).toThrow(/not a valid URL/);
    expect(() => describeRedisUrl('not a url s3cret')).not.toThrow(/s3cret/);
  });
});

describe('openRedisBus without a server', () => {
  it('rejects with a readable message, naming the server but not the password', async () => {
    const { logger, text } = memoryLogger();
    const opening = openRedisBus({
      url: 'redis://admin:s3cret@127.0.0.1:1',
      connectTimeoutMs: 300,
      logger,
    });
    await expect(opening).rejects.toThrow(
      /^could not connect to Redis at redis:\/\/127\.0\.0\.1:1 within 300 ms: .*ECONNREFUSED/,
    );
    await opening.catch((error: Error) => expect(error.message).not.toContain('s3cret'));
    expect(text()).not.toContain('s3cret');
  });
});

describe.skipIf(!url)('RedisBus', () => {
  const redisUrl = url!;
  const opened: RedisBus[] = [];
  let admin: Redis;

  /** `n` nodes on a channel of their own. */
  const openNodes = async (n: number, logger?: RedisLogger) => {
    const channel = `test:${randomUUID()}:events`;
    const buses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        openRedisBus({ url: redisUrl, channel, nodeId: `n${i}-${randomUUID()}`, logger }),
      ),
    );
    opened.push(...buses);
    return buses;
  };

  beforeAll(() => {
    admin = new Redis(redisUrl);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((bus) => bus.close()));
  });
  afterAll(async () => {
    await admin.quit();
  });

  busContract('redis', (n) => openNodes(n, memoryLogger().logger), { multiNode: true });

  it('describes itself without credentials and has a node id per node', async () => {
    const [a, b] = await openNodes(2);
    expect(a!.description).toBe(describeRedisUrl(redisUrl));
    expect(a!.nodeId).not.toBe(b!.nodeId);
    expect(a!.channel).toBe(b!.channel);
  });

  it('rejects a publish Redis did not take, logs it, and never leaves it unhandled', async () => {
    const { logger, lines } = memoryLogger();
    const [bus] = await openNodes(1, logger);
    const got: BusEvent[] = [];
    bus!.subscribe((e) => got.push(e));
    bus!.client.disconnect(); // the publisher is gone for good; the subscriber stays
    // A caller that `void`s the promise: an unhandled rejection would fail this run.
    void bus!.publish(event('voided'));
    await expect(bus!.publish(event('awaited'))).rejects.toThrow(
      /^publishing on redis:\/\/[^@]+ failed: /,
    );
    expect(got.map((e) => (e.type === 'deliver' ? e.messageId : ''))).toEqual([
      'voided',
      'awaited',
    ]);
    await until(() => lines.some((l) => l.level === 'warn' && /publish/.test(l.msg)), 'a log');
    await expect(bus!.ping()).rejects.toThrow();
  });

  it('rejects a publish after close instead of hanging', async () => {
    const [bus] = await openNodes(1);
    await bus!.close();
    void bus!.publish(event('voided'));
    await expect(bus!.publish(event('late'))).rejects.toThrow(/closed/);
  });

  it('resubscribes after its subscriber connection is killed', async () => {
    const [a, b] = await openNodes(2);
    const atB: string[] = [];
    b!.subscribe((e) => atB.push(e.type === 'deliver' ? e.messageId : ''));
    const clients = await admin.client('LIST');
    const line = String(clients)
      .split('\n')
      .find((l) => l.includes(`name=chat-bus-sub-${b!.nodeId}`));
    const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
    expect(id).toBeDefined();
    await admin.client('KILL', 'ID', id!);
    // Events published while b is away are lost (best effort); keep publishing until one arrives.
    let sent = 0;
    await until(() => {
      if (atB.length === 0) void a!.publish(event(`probe${sent++}`));
      return atB.length > 0;
    }, 'an event on b after its reconnect');
    await expect(b!.ping()).resolves.toBeUndefined();
  });

  it('sends the events published in one tick in one PUBLISH, in order', async () => {
    const [a, b] = await openNodes(2);
    const atB: BusEvent[] = [];
    b!.subscribe((e) => atB.push(e));
    const watcher = new Redis(url!);
    const payloads: string[] = [];
    watcher.on('message', (_channel: string, payload: string) => payloads.push(payload));
    await watcher.subscribe(a!.channel);
    const ids = Array.from({ length: 10 }, (_, i) => `tick${i}`);
    await Promise.all(ids.map((id) => a!.publish(event(id))));
    await until(() => atB.length === ids.length, 'the ten events on b');
    expect(atB).toEqual(ids.map(event));
    expect(payloads).toHaveLength(1);
    expect(JSON.parse(payloads[0]!).es).toHaveLength(ids.length);
    await watcher.quit();
  });

  it('ignores foreign messages on its channel and keeps delivering', async () => {
    const { logger, lines } = memoryLogger();
    const [a, b] = await openNodes(2, logger);
    const atB: BusEvent[] = [];
    b!.subscribe((e) => atB.push(e));
    await admin.publish(a!.channel, 'not json');
    await admin.publish(a!.channel, JSON.stringify({ o: 'elsewhere', es: [{ type: 'nope' }] }));
    await admin.publish(a!.channel, JSON.stringify({ o: 'elsewhere', es: [{ type: 'deliver' }] }));
    await a!.publish(event('real'));
    await until(() => atB.length > 0, 'the real event on b');
    expect(atB).toEqual([event('real')]);
    expect(lines.some((l) => l.level === 'warn' && /not a bus event/.test(JSON.stringify(l)))).toBe(
      true,
    );
  });

  it('keeps calling the other handlers, and publishing, when one handler throws', async () => {
    const { logger, lines } = memoryLogger();
    const [a, b] = await openNodes(2, logger);
    for (const bus of [a!, b!])
      bus.subscribe(() => {
        throw new Error('handler bug');
      });
    const [atA, atB] = [[] as BusEvent[], [] as BusEvent[]];
    a!.subscribe((e) => atA.push(e));
    b!.subscribe((e) => atB.push(e));
    await a!.publish(event('x'));
    await until(() => atB.length > 0, 'x on b');
    expect(atA).toEqual([event('x')]);
    expect(atB).toEqual([event('x')]);
    expect(lines.filter((l) => /handler of a deliver event failed/.test(l.msg))).toHaveLength(2);
  });
});
