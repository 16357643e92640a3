// The limits that count per account or per client address hold across two nodes: two real
// servers sharing one PostgreSQL schema and one Redis (bus, presence, HTTP rate limits and
// RedisLimits), as behind a load balancer. A client that alternates between the nodes gets the
// limit once (within the leases' stated overshoot, docs/security.md), not twice: messages per
// account, WebSocket handshakes per address, failed logins per source and per account; and a
// source known to an account on one node is known on the other.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedisBus, type RedisBus } from '../../src/bus/redis-bus.js';
import { RedisPresence } from '../../src/bus/redis-presence.js';
import { RedisLimits } from '../../src/limits/redis-limits.js';
import { openPostgresStore, type PostgresStore } from '../../src/storage/postgres-store.js';
import {
  account,
  connect,
  PASSWORD,
  request,
  startServer,
  type Client,
  type TestServer,
} from '../helpers/server.js';
import { serviceUrl } from '../helpers/services.js';

const databaseUrl = serviceUrl('DATABASE_URL', 'postgres:');
const redisUrl = serviceUrl('REDIS_URL', 'redis:');

describe.skipIf(!databaseUrl || !redisUrl)('limits shared by two nodes', () => {
  const schema = `limits_${randomBytes(6).toString('hex')}`;
  const tag = randomBytes(6).toString('hex');
  const opened: Array<{ close(): Promise<void> }> = [];
  let admin: PostgresStore;

  /** Two nodes of one deployment with `env`; `deployment` keeps pairs' counters apart. */
  async function pair(deployment: string, env: Record<string, string>): Promise<TestServer[]> {
    const nodes: TestServer[] = [];
    for (let i = 0; i < 2; i++) {
      const store = await openPostgresStore({ url: databaseUrl!, schema });
      const bus: RedisBus = await openRedisBus({ url: redisUrl!, channel: `test:${tag}:events` });
      const presence = new RedisPresence(bus.client, {
        nodeId: bus.nodeId,
        prefix: `test:${tag}:`,
      });
      // As main.ts makes them: on the bus' publisher connection.
      const limits = new RedisLimits(bus.client, { prefix: `test:${tag}:${deployment}:limits:` });
      const server = await startServer(env, {
        store,
        bus,
        presence,
        limits,
        sharedRateLimits: { redis: bus.client, nameSpace: `test:${tag}:${deployment}:rate:` },
        jwtSecret: 'cluster-test-secret-at-least-32-characters',
      });
      opened.push(server, limits, presence, bus, store);
      nodes.push(server);
    }
    return nodes;
  }

  beforeAll(async () => {
    admin = await openPostgresStore({ url: databaseUrl!, schema }); // migrates once, up front
  });

  afterAll(async () => {
    for (const x of opened) await x.close();
    await admin.close();
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('counts messages per account once across both nodes (burst 20, lease 2)', async () => {
    // 1 message/s: the refill during the test is a token or two.
    const [a, b] = await pair('messages', {
      RATE_MESSAGES_PER_SEC: '1',
      RATE_MESSAGES_BURST: '20',
    });
    const alice = await account(a!);
    const bob = await account(b!);
    const conns: Client[] = [
      await connect(a!, { token: alice.token }),
      await connect(b!, { token: alice.token }),
    ];
    const started = Date.now();
    let acked = 0;
    let limited = 0;
    for (let i = 0; i < 40; i++) {
      const conn = conns[i % 2]!;
      conn.send({ receiver: bob.username, content: `m${i}`, clientId: `m${i}` });
      const reply = await conn.next((f) => f.clientId === `m${i}`);
      if (reply.type === 'ack') acked += 1;
      else {
        expect(reply).toMatchObject({ type: 'error', code: 'rate_limited' });
        limited += 1;
      }
    }
    const refill = Math.ceil((Date.now() - started) / 1000);
    // A bucket per node would have acked all 40 (20 on each); shared: burst + refill + 2·k·lease.
    expect(acked).toBeGreaterThanOrEqual(20 - 2 * 2);
    expect(acked).toBeLessThanOrEqual(20 + refill + 2 * 2 * 2);
    expect(acked + limited).toBe(40);
    // Nothing refused was stored: bob's history has exactly the acked messages.
    const history = await request(b!, 'GET', `/messages?with=${alice.username}&limit=100`, {
      token: bob.token,
    });
    expect(history.body.messages).toHaveLength(acked);
    for (const c of conns) c.close();
  });

  it('counts WebSocket handshakes per address once across both nodes (10 a minute)', async () => {
    const [a, b] = await pair('handshakes', { RATE_WS_HANDSHAKES_PER_MIN: '10' });
    const alice = await account(a!); // HTTP: not counted as a handshake
    let opened = 0;
    let refused = 0;
    for (let i = 0; i < 24; i++) {
      try {
        const conn = await connect(i % 2 ? b! : a!, { token: alice.token });
        opened += 1;
        conn.close();
      } catch (error) {
        expect((error as { status?: number }).status).toBe(429);
        const retryAfter = Number(
          (error as { headers: Record<string, string> }).headers['retry-after'],
        );
        expect(retryAfter).toBeGreaterThan(0);
        refused += 1;
      }
    }
    // A bucket per node would have let 20 through; shared: 10 + 2·k·lease (lease 1).
    expect(opened).toBeGreaterThanOrEqual(10 - 2);
    expect(opened).toBeLessThanOrEqual(10 + 1 + 2 * 2 * 1);
    expect(opened + refused).toBe(24);
  });

  it('counts failed logins per source once across both nodes, exactly', async () => {
    const [a, b] = await pair('login-source', {
      RATE_LOGIN_SOURCE_FAILURES: '3',
      RATE_LOGIN_MAX_DELAY_SEC: '60',
    });
    const carol = await account(a!);
    const login = (node: TestServer, password: string) =>
      request(node, 'POST', '/login', { body: { username: carol.username, password } });
    // Parallel attempts on both nodes: exactly three get a password check, not three per node.
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => login(i % 2 ? b! : a!, 'not the right passphrase')),
    );
    expect(replies.filter((r) => r.status === 401)).toHaveLength(3);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(7);
    for (const node of [a!, b!]) {
      const r = await login(node, PASSWORD);
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('shares the account ceiling and the sources an account knows across both nodes', async () => {
    const [a, b] = await pair('login-account', {
      TRUST_PROXY: 'true',
      RATE_LOGIN_SOURCE_FAILURES: '2',
      RATE_LOGIN_ACCOUNT_FAILURES: '4',
      RATE_LOGIN_MAX_DELAY_SEC: '60',
    });
    const dave = await account(a!);
    const login = (node: TestServer, address: string, password: string, cookie?: string) =>
      request(node, 'POST', '/login', {
        body: { username: dave.username, password },
        headers: { 'x-forwarded-for': address, ...(cookie ? { cookie } : {}) },
      });
    // The owner logs in at home through node a: home is known, the device gets its cookie.
    const home = await login(a!, '203.0.113.7', PASSWORD);
    expect(home.status).toBe(200);
    const cookie = home.headers.get('set-cookie')!.split(';')[0]!;
    // Strangers from two addresses, a failure through each node from each: the ceiling, 4.
    for (const address of ['198.51.100.1', '198.51.100.2'])
      for (const node of [a!, b!])
        expect((await login(node, address, 'not the right passphrase')).status).toBe(401);
    // A fresh address is slowed on either node...
    for (const node of [a!, b!])
      expect((await login(node, '198.51.100.50', PASSWORD)).status).toBe(429);
    // ...but the owner is not: home through node b, and the device cookie from a new address.
    expect((await login(b!, '203.0.113.7', PASSWORD)).status).toBe(200);
    expect((await login(b!, '192.0.2.99', PASSWORD, cookie)).status).toBe(200);
  });
});
