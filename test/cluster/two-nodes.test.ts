// Two nodes of one deployment: two real servers sharing one PostgreSQL schema and one Redis
// channel, as behind a load balancer. What a client does on one node must hold on the other:
// tokens, delivery to every device, order, presence, revocation, history and sync.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedisBus, type RedisBus } from '../../src/bus/redis-bus.js';
import { RedisPresence } from '../../src/bus/redis-presence.js';
import { openPostgresStore, type PostgresStore } from '../../src/storage/postgres-store.js';
import {
  account,
  connect,
  request,
  startServer,
  type Account,
  type TestServer,
} from '../helpers/server.js';
import { serviceUrl } from '../helpers/services.js';

const databaseUrl = serviceUrl('DATABASE_URL', 'postgres:');
const redisUrl = serviceUrl('REDIS_URL', 'redis:');

/** Polls `check` until it returns true; fails after `ms`. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(!databaseUrl || !redisUrl)('two nodes on PostgreSQL and Redis', () => {
  const schema = `cluster_${randomBytes(6).toString('hex')}`;
  const tag = randomBytes(6).toString('hex');
  const opened: Array<{ close(): Promise<void> }> = [];
  let a: TestServer;
  let b: TestServer;
  let alice: Account;
  let bob: Account;

  async function node(env: Record<string, string> = {}): Promise<TestServer> {
    const store: PostgresStore = await openPostgresStore({ url: databaseUrl!, schema });
    const bus: RedisBus = await openRedisBus({ url: redisUrl!, channel: `test:${tag}:events` });
    const presence = new RedisPresence(bus.client, { nodeId: bus.nodeId, prefix: `test:${tag}:` });
    const server = await startServer(
      { RATE_MESSAGES_PER_SEC: '1000', RATE_MESSAGES_BURST: '1000', ...env },
      {
        store,
        bus,
        presence,
        sharedRateLimits: {
          redis: bus.client,
          nameSpace: `test:${tag}:rate:${env.RATE_REGISTER_PER_MIN ?? ''}:`,
        },
        jwtSecret: 'cluster-test-secret-at-least-32-characters',
      },
    );
    // Closed in this order after the server: presence uses the bus' connection.
    opened.push(server, presence, bus, store);
    return server;
  }

  beforeAll(async () => {
    a = await node();
    b = await node();
    alice = await account(a);
    bob = await account(b);
  });

  afterAll(async () => {
    for (const x of opened) await x.close();
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('accepts on one node the accounts and tokens made on the other', async () => {
    expect((await request(b, 'GET', '/users/me', { token: alice.token })).body).toMatchObject({
      username: alice.username,
    });
    const login = await request(a, 'POST', '/login', {
      body: { username: bob.username, password: 'a perfectly fine passphrase' },
    });
    expect(login.status).toBe(200);
    const refreshed = await request(b, 'POST', '/token/refresh', {
      body: { refreshToken: login.body.refreshToken },
    });
    expect(refreshed.status).toBe(200);
  });

  it("delivers to every device of both users on either node, except the sender's own", async () => {
    const a1 = await connect(a, { token: alice.token });
    const a2 = await connect(b, { token: alice.token });
    const b1 = await connect(b, { token: bob.token });
    const b2 = await connect(a, { token: bob.token });
    a1.send({ sender: alice.username, receiver: bob.username, content: 'across nodes' });
    const ack = await a1.next();
    expect(ack).toMatchObject({ type: 'ack', id: expect.stringMatching(/^\d+$/) });
    const expected = {
      type: 'message',
      id: ack.id,
      conversationId: expect.stringMatching(/^\d+$/),
      sender: alice.username,
      receiver: bob.username,
      content: 'across nodes',
      createdAt: ack.createdAt,
    };
    expect(await b1.next()).toEqual(expected);
    expect(await b2.next()).toEqual(expected);
    expect(await a2.next()).toEqual(expected);
    await new Promise((r) => setTimeout(r, 100));
    expect(a1.frames).toEqual([]);
    for (const c of [a1, a2, b1, b2]) c.close();
  });

  it('keeps the order of pipelined frames from one node to the other, and ids grow', async () => {
    const sender = await connect(a, { token: alice.token });
    const receiver = await connect(b, { token: bob.token });
    for (let i = 0; i < 200; i++)
      sender.send({ receiver: bob.username, content: `n${i}`, clientId: `order-${i}` });
    const got: Array<{ id: string; content: string }> = [];
    for (let i = 0; i < 200; i++) got.push(await receiver.next((f) => f.type === 'message'));
    expect(got.map((m) => m.content)).toEqual(Array.from({ length: 200 }, (_, i) => `n${i}`));
    const ids = got.map((m) => BigInt(m.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    sender.close();
    receiver.close();
  });

  it('answers a retried clientId with the original ack on the other node', async () => {
    const first = await connect(a, { token: alice.token });
    first.send({ receiver: bob.username, content: 'once', clientId: 'retry-across' });
    const ack = await first.next((f) => f.type === 'ack');
    first.close();
    const second = await connect(b, { token: alice.token });
    second.send({ receiver: bob.username, content: 'twice', clientId: 'retry-across' });
    expect(await second.next((f) => f.type === 'ack')).toEqual(ack);
    second.close();
  });

  it('shows a user online from the other node while connected, and offline after', async () => {
    const carol = await account(a);
    const online = async () =>
      (await request(a, 'GET', `/users/${carol.username}`, { token: alice.token })).body.online;
    expect(await online()).toBe(false);
    const conn = await connect(b, { token: carol.token });
    await eventually(async () => (await online()) === true);
    conn.close();
    await conn.closed;
    await eventually(async () => (await online()) === false);
  });

  it("closes a revoked session's sockets on the other node with 4001", async () => {
    const dave = await account(a);
    const conn = await connect(b, { token: dave.token });
    const sessions = await request(a, 'GET', '/sessions', { token: dave.token });
    const current = sessions.body.sessions.find((s: { current: boolean }) => s.current);
    expect(
      (await request(a, 'DELETE', `/sessions/${current.id}`, { token: dave.token })).status,
    ).toBe(204);
    expect((await conn.closed).code).toBe(4001);
    expect((await request(b, 'GET', '/users/me', { token: dave.token })).status).toBe(401);
  });

  it('counts the HTTP rate limits across nodes', async () => {
    // Two more nodes with a low registration limit (per client address, shared in Redis).
    const limited = { RATE_REGISTER_PER_MIN: '3' };
    const [c, d] = [await node(limited), await node(limited)];
    const register = (server: TestServer) =>
      request(server, 'POST', '/register', {
        body: {
          username: `rl${randomBytes(4).toString('hex')}`,
          password: 'a perfectly fine passphrase',
        },
      });
    expect((await register(c)).status).toBe(201);
    expect((await register(d)).status).toBe(201);
    expect((await register(c)).status).toBe(201);
    const refused = await register(d);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('lets requests through when the shared rate-limit store is unreachable', async () => {
    const e = await node({ RATE_REGISTER_PER_MIN: '1000' });
    const bus = opened.at(-2) as RedisBus; // pushed after the node's server and presence
    bus.client.disconnect();
    const res = await request(e, 'POST', '/register', {
      body: {
        username: `rl${randomBytes(4).toString('hex')}`,
        password: 'a perfectly fine passphrase',
      },
    });
    expect(res.status).toBe(201);
  });

  it('serves history and sync on one node for messages stored through the other', async () => {
    const erin = await account(a);
    const frank = await account(b);
    const conn = await connect(a, { token: erin.token });
    const acks: string[] = [];
    for (let i = 0; i < 5; i++) {
      conn.send({ receiver: frank.username, content: `h${i}`, clientId: `h${i}` });
      acks.push((await conn.next((f) => f.type === 'ack')).id);
    }
    conn.close();
    const history = await request(b, 'GET', `/messages?with=${erin.username}&limit=3`, {
      token: frank.token,
    });
    expect(history.status).toBe(200);
    expect(history.body.messages.map((m: { id: string }) => m.id)).toEqual(acks.slice(2));
    expect(history.body.hasMore).toBe(true);
    const sync = await request(b, 'GET', `/sync?after=${acks[1]}`, { token: frank.token });
    expect(sync.status).toBe(200);
    expect(sync.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'h2',
      'h3',
      'h4',
    ]);
  });
  it('fans a group message out to members on both nodes, and stops a removed member at once on either', async () => {
    const carol = await account(a);
    const created = await request(a, 'POST', '/conversations', {
      token: alice.token,
      body: { title: 'cluster', members: [bob.username, carol.username] },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const ca = await connect(a, { token: alice.token });
    const cb = await connect(b, { token: bob.token });
    const cc = await connect(b, { token: carol.token });
    ca.send({ conversationId: id, content: 'to all', clientId: 'g1' });
    const ack = await ca.next((f) => f.type === 'ack');
    for (const x of [cb, cc])
      expect(await x.next((f) => f.type === 'message')).toMatchObject({
        id: ack.id,
        conversationId: id,
        content: 'to all',
      });
    // Bob reads on node b: alice (node a) gets the receipt; so did the delivered one.
    expect(await ca.nextSignal((f) => f.kind === 'delivered')).toMatchObject({ upTo: ack.id });
    cb.send({ type: 'read', conversationId: id, upTo: ack.id });
    expect(await ca.nextSignal((f) => f.kind === 'read' && f.user === bob.username)).toMatchObject({
      upTo: ack.id,
    });
    // Removed through node b, carol (connected to b) gets her removal and nothing after it;
    // a message sent on node a right after does not reach her.
    const removed = await request(b, 'DELETE', `/conversations/${id}/members/${carol.username}`, {
      token: alice.token,
    });
    expect(removed.status).toBe(204);
    expect(await cc.next((f) => f.type === 'conversation')).toMatchObject({
      action: 'member_removed',
    });
    ca.send({ conversationId: id, content: 'without carol', clientId: 'g2' });
    await ca.next((f) => f.type === 'ack' && f.clientId === 'g2');
    expect(await cb.next((f) => f.type === 'message')).toMatchObject({ content: 'without carol' });
    await new Promise((r) => setTimeout(r, 200));
    expect(cc.frames.filter((f) => f.type === 'message')).toEqual([]);
    const asCarol = await request(a, 'GET', `/conversations/${id}`, { token: carol.token });
    expect(asCarol.status).toBe(404);
    for (const x of [ca, cb, cc]) x.close();
  });
  it('pushes presence across nodes to the users who share a conversation', async () => {
    const [dora, ed] = [await account(a), await account(b)];
    const made = await request(a, 'POST', '/conversations', {
      token: dora.token,
      body: { title: 'presence', members: [ed.username] },
    });
    expect(made.status).toBe(201);
    const cd = await connect(a, { token: dora.token });
    const ce = await connect(b, { token: ed.token });
    expect(
      await cd.nextSignal((f) => f.type === 'presence' && f.user === ed.username, 8000),
    ).toMatchObject({ online: true, lastSeen: null });
    ce.close();
    expect(
      await cd.nextSignal((f) => f.type === 'presence' && f.user === ed.username, 8000),
    ).toMatchObject({ online: false, lastSeen: expect.any(String) });
    cd.close();
  });
});
