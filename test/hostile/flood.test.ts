// A connection that keeps sending frames the server refuses spends its account's budget of error
// frames (RATE_WS_ERRORS_PER_MIN) and is closed with 1008 `too_many_errors`, while another
// user's messages keep flowing: all acked, all delivered, in order. No timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';
import { account, connect, startServer, type TestServer } from '../helpers/server.js';

const BUDGET = 20;
let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    RATE_WS_ERRORS_PER_MIN: String(BUDGET),
    RATE_MESSAGES_PER_SEC: '100000',
    RATE_MESSAGES_BURST: '100000',
    RATE_REGISTER_PER_MIN: '100000',
    RATE_LOGIN_PER_MIN: '100000',
  });
});

afterAll(async () => {
  await server?.close();
});

/** Malformed frames of every kind that is refused before storage. */
const BAD: Array<string | Buffer> = [
  '{not json',
  Buffer.from([0xde, 0xad, 0xbe, 0xef]),
  '[1,2,3]',
  '"a string"',
  '{"type":"nope"}',
  '{"type":"message","receiver":7,"content":"x"}',
  '{"receiver":"x","content":"\\ud800"}',
  '{"type":"sync","after":{"__proto__":{"polluted":true}}}',
];

describe('refused frames cost their sender’s budget', () => {
  it('closes a flooding connection with 1008 too_many_errors while another user’s messages flow', async () => {
    expect(ERRORS.too_many_errors.close).toBe(1008);
    const [flooder, alice, bob] = await Promise.all([
      account(server),
      account(server),
      account(server),
    ]);
    const [f, a, b] = await Promise.all([
      connect(server, { token: flooder.token }),
      connect(server, { token: alice.token }),
      connect(server, { token: bob.token }),
    ]);

    const total = 1000;
    const n = 60;
    let sent = 0;
    // The flood goes out in slices between alice's messages, so both are in flight together.
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < total / n && sent < total; j++, sent++) {
        const frame = BAD[sent % BAD.length]!;
        f.ws.send(frame, { binary: Buffer.isBuffer(frame) });
      }
      a.send({ receiver: bob.username, content: `m${i}`, clientId: `flow-${i}` });
      await new Promise((resolve) => setImmediate(resolve));
    }

    const closed = await f.closed;
    expect(closed).toEqual({ code: 1008, reason: 'too_many_errors' });
    const errors = f.frames.filter((x) => x.type === 'error');
    expect(errors.length).toBeLessThanOrEqual(BUDGET + 1);
    expect(errors.every((x) => ['invalid_json', 'invalid_message'].includes(x.code))).toBe(true);

    const acks = [];
    for (let i = 0; i < n; i++) acks.push(await a.next((x) => x.type === 'ack'));
    expect(acks.map((x) => x.clientId)).toEqual(Array.from({ length: n }, (_, i) => `flow-${i}`));
    const received = [];
    for (let i = 0; i < n; i++) received.push(await b.next((x) => x.type === 'message'));
    expect(received.map((x) => x.content)).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    expect(received.map((x) => x.id)).toEqual(acks.map((x) => x.id));
    expect(a.frames.filter((x) => x.type === 'error')).toEqual([]);

    // The budget is the account's: a new connection does not refill it.
    const again = await connect(server, { token: flooder.token });
    for (let i = 0; i < 3; i++) again.send('{oops');
    expect(await again.closed).toEqual({ code: 1008, reason: 'too_many_errors' });
    expect(again.frames.filter((x) => x.type === 'error').length).toBeLessThanOrEqual(2);

    for (const c of [a, b]) c.close();
  });

  it('does not count frames that are not the client’s mistake', async () => {
    const carol = await account(server);
    const c = await connect(server, { token: carol.token });
    for (let i = 0; i < 3 * BUDGET; i++) c.send({ type: 'ping' });
    for (let i = 0; i < 3 * BUDGET; i++) await c.next((x) => x.type === 'pong');
    for (let i = 0; i < BUDGET; i++) c.send({ receiver: carol.username, content: `self ${i}` });
    for (let i = 0; i < BUDGET; i++) await c.next((x) => x.type === 'ack');
    // A few mistakes within the budget are answered, and the connection stays open.
    c.send('{oops');
    expect((await c.next((x) => x.type === 'error')).code).toBe('invalid_json');
    c.send({ type: 'ping' });
    await c.next((x) => x.type === 'pong');
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    c.close();
  });
});
