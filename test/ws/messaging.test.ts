// Sending over the WebSocket: acks after storage, fan-out to every device, error frames,
// idempotent retries, ordering of pipelined frames, rate limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  account,
  connect,
  request,
  startServer,
  type Account,
  type TestServer,
} from '../helpers/server.js';

let server: TestServer;
let alice: Account;
let bob: Account;

beforeAll(async () => {
  server = await startServer({ RATE_MESSAGES_PER_SEC: '1000', RATE_MESSAGES_BURST: '1000' });
  alice = await account(server);
  bob = await account(server);
});
afterAll(() => server.close());

describe('sending messages', () => {
  it('acks the original three-field frame and delivers it to every device but the sending one', async () => {
    const a1 = await connect(server, { token: alice.token });
    const a2 = await connect(server, { token: alice.token });
    const b1 = await connect(server, { token: bob.token });
    const b2 = await connect(server, { token: bob.token });
    a1.send({ sender: alice.username, receiver: bob.username, content: 'hi' });
    const ack = await a1.next();
    expect(ack).toMatchObject({
      type: 'ack',
      id: expect.stringMatching(/^\d+$/),
      createdAt: expect.any(String),
    });
    expect(new Date(ack.createdAt).toISOString()).toBe(ack.createdAt);
    const expected = {
      type: 'message',
      id: ack.id,
      // Every message frame carries its conversation (an extension of the original frame).
      conversationId: expect.stringMatching(/^\d+$/),
      sender: alice.username,
      receiver: bob.username,
      content: 'hi',
      createdAt: ack.createdAt,
    };
    expect(await b1.next()).toEqual(expected);
    expect(await b2.next()).toEqual(expected);
    expect(await a2.next()).toEqual(expected);
    await new Promise((r) => setTimeout(r, 100));
    expect(a1.frames).toEqual([]);
    for (const c of [a1, a2, b1, b2]) c.close();
  });

  it('takes sender and receiver in any case, echoes clientId, and returns registered spellings', async () => {
    const a = await connect(server, { token: alice.token });
    const b = await connect(server, { token: bob.token });
    a.send({
      type: 'message',
      sender: alice.username.toUpperCase(),
      receiver: bob.username.toUpperCase(),
      content: 'x',
      clientId: 'c-1',
    });
    const ack = await a.next();
    expect(ack).toMatchObject({ type: 'ack', clientId: 'c-1' });
    const msg = await b.next();
    expect(msg.sender).toBe(alice.username);
    expect(msg.receiver).toBe(bob.username);
    a.close();
    b.close();
  });

  it('answers every bad frame with an error frame carrying clientId, and stays open', async () => {
    const a = await connect(server, { token: alice.token });
    const cases: Array<[unknown, string]> = [
      ['{not json', 'invalid_json'],
      ['[1,2]', 'invalid_message'],
      ['"text"', 'invalid_message'],
      [{ receiver: bob.username, clientId: 'e1' }, 'invalid_message'],
      [{ receiver: bob.username, content: '', clientId: 'e2' }, 'invalid_message'],
      [{ receiver: bob.username, content: 'x'.repeat(4001), clientId: 'e3' }, 'invalid_message'],
      [{ receiver: bob.username, content: 5, clientId: 'e4' }, 'invalid_message'],
      [{ receiver: bob.username, content: 'x', clientId: 'c'.repeat(65) }, 'invalid_message'],
      [{ type: 'shout', receiver: bob.username, content: 'x', clientId: 'e5' }, 'invalid_message'],
      [{ receiver: 'no_such_user_xyz', content: 'x', clientId: 'e6' }, 'unknown_receiver'],
      [
        { sender: bob.username, receiver: bob.username, content: 'x', clientId: 'e7' },
        'sender_mismatch',
      ],
    ];
    for (const [frame, code] of cases) {
      a.send(frame);
      const error = await a.next();
      expect(error).toMatchObject({ type: 'error', code, message: expect.any(String) });
      const clientId =
        typeof frame === 'object' ? (frame as { clientId?: string }).clientId : undefined;
      if (clientId !== undefined) expect(error.clientId).toBe(clientId);
    }
    a.send({ receiver: bob.username, content: 'still open', clientId: 'ok' });
    expect(await a.next()).toMatchObject({ type: 'ack', clientId: 'ok' });
    a.close();
  });

  it('counts content in code points: 4000 emoji are accepted', async () => {
    const a = await connect(server, { token: alice.token });
    a.send({ receiver: bob.username, content: '😀'.repeat(4000), clientId: 'emoji' });
    expect(await a.next()).toMatchObject({ type: 'ack', clientId: 'emoji' });
    a.close();
  });

  it('refuses binary frames with invalid_message', async () => {
    const a = await connect(server, { token: alice.token });
    a.ws.send(Buffer.from('{"receiver":"x","content":"y"}'), { binary: true });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    a.close();
  });

  it('closes with 1009 on a frame over 64 KiB', async () => {
    const a = await connect(server, { token: alice.token });
    a.send({ receiver: bob.username, content: 'x'.repeat(70_000) });
    expect((await a.closed).code).toBe(1009);
  });

  it('stores a retried clientId once and acks it again with the original id', async () => {
    const a = await connect(server, { token: alice.token });
    const b = await connect(server, { token: bob.token });
    a.send({ receiver: bob.username, content: 'once', clientId: 'retry-1' });
    const first = await a.next();
    a.send({ receiver: bob.username, content: 'changed on retry', clientId: 'retry-1' });
    const second = await a.next();
    expect(second).toEqual(first);
    // And from another connection of the same user, too.
    const a2 = await connect(server, { token: alice.token });
    a2.send({ receiver: bob.username, content: 'again', clientId: 'retry-1' });
    expect(await a2.next()).toEqual(first);
    expect(await b.next()).toMatchObject({ id: first.id, content: 'once' });
    await new Promise((r) => setTimeout(r, 100));
    expect(b.frames).toEqual([]);
    const history = await request(server, 'GET', `/messages?with=${bob.username}&limit=100`, {
      token: alice.token,
    });
    expect(
      history.body.messages.filter((m: { content: string }) => m.content === 'once'),
    ).toHaveLength(1);
    expect(
      history.body.messages.some((m: { content: string }) => m.content.includes('again')),
    ).toBe(false);
    for (const c of [a, a2, b]) c.close();
  });

  it('keeps the order of pipelined frames in acks, ids and deliveries', async () => {
    const a = await connect(server, { token: alice.token });
    const b = await connect(server, { token: bob.token });
    const n = 300;
    for (let i = 0; i < n; i++)
      a.send({ receiver: bob.username, content: `p${i}`, clientId: `pipe-${i}` });
    const acks = [];
    for (let i = 0; i < n; i++) acks.push(await a.next((f) => f.type === 'ack'));
    expect(acks.map((f) => f.clientId)).toEqual(Array.from({ length: n }, (_, i) => `pipe-${i}`));
    const ids = acks.map((f) => Number(f.id));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(n);
    const received = [];
    for (let i = 0; i < n; i++) received.push(await b.next((f) => f.type === 'message'));
    expect(received.map((m) => m.content)).toEqual(Array.from({ length: n }, (_, i) => `p${i}`));
    a.close();
    b.close();
  });
});

describe('message rate limit', () => {
  it('refuses frames past the burst with rate_limited and stores nothing for them', async () => {
    const limited = await startServer({ RATE_MESSAGES_PER_SEC: '1', RATE_MESSAGES_BURST: '3' });
    try {
      const x = await account(limited);
      const y = await account(limited);
      const c = await connect(limited, { token: x.token });
      for (let i = 0; i < 5; i++)
        c.send({ receiver: y.username, content: `m${i}`, clientId: `r${i}` });
      const frames = [];
      for (let i = 0; i < 5; i++) frames.push(await c.next());
      expect(frames.filter((f) => f.type === 'ack')).toHaveLength(3);
      const errors = frames.filter((f) => f.type === 'error');
      expect(errors.map((f) => [f.code, f.clientId])).toEqual([
        ['rate_limited', 'r3'],
        ['rate_limited', 'r4'],
      ]);
      const history = await request(limited, 'GET', `/messages?with=${y.username}`, {
        token: x.token,
      });
      expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual([
        'm0',
        'm1',
        'm2',
      ]);
      c.close();
    } finally {
      await limited.close();
    }
  });
});

describe('heartbeat', () => {
  it('drops a connection that stops answering pings', async () => {
    const fast = await startServer({ WS_PING_INTERVAL_MS: '300' });
    try {
      const x = await account(fast);
      const ws = new WebSocket(fast.wsUrl, {
        headers: { authorization: `Bearer ${x.token}` },
        autoPong: false,
      });
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      await new Promise((resolve) => ws.on('open', resolve));
      expect(await closed).toBe(1006);
      // A client that answers stays connected across several intervals.
      const ok = await connect(fast, { token: x.token });
      await new Promise((r) => setTimeout(r, 1000));
      expect(ok.ws.readyState).toBe(WebSocket.OPEN);
      ok.send({ type: 'ping' });
      expect(await ok.next()).toEqual({ type: 'pong' });
      ok.close();
    } finally {
      await fast.close();
    }
  });
});
