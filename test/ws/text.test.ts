// Text that is not well-formed Unicode on the WebSocket: a lone surrogate written as a `\u`
// escape in any field of a frame gets an `invalid_message` error frame, nothing is stored or
// delivered, and the connection stays open. Escaped well-formed text is delivered and stored
// exactly as sent: live and history agree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  server = await startServer();
  alice = await account(server);
  bob = await account(server);
});
afterAll(() => server.close());

const history = async () =>
  (await request(server, 'GET', `/messages?with=${alice.username}`, { token: bob.token })).body
    .messages as Array<{ id: string; content: string }>;

describe('lone surrogates in frames', () => {
  it.each([
    ['content', `{"receiver":"RECEIVER","content":"hi \\ud800","clientId":"s1"}`, 's1'],
    ['content', `{"receiver":"RECEIVER","content":"\\udc00\\ud800","clientId":"s2"}`, 's2'],
    ['receiver', `{"receiver":"RECEIVER\\udfff","content":"hi","clientId":"s3"}`, 's3'],
    ['sender', `{"sender":"\\ud800","receiver":"RECEIVER","content":"hi","clientId":"s4"}`, 's4'],
    ['extra', `{"receiver":"RECEIVER","content":"hi","extra":"\\ud800","clientId":"s5"}`, 's5'],
    ['clientId', `{"receiver":"RECEIVER","content":"hi","clientId":"\\ud800"}`, undefined],
  ])(
    'refuses one in %s with invalid_message; nothing stored or delivered',
    async (field, raw, id) => {
      const a = await connect(server, { token: alice.token });
      const b = await connect(server, { token: bob.token });
      a.send(raw.replace('RECEIVER', bob.username));
      const error = await a.next();
      expect(error).toMatchObject({ type: 'error', code: 'invalid_message' });
      expect(error.message).toMatch(new RegExp(`^${field}: .*well-formed Unicode`));
      expect(error.clientId).toBe(id);
      // The connection stays open and the next frame is handled.
      a.send({ receiver: bob.username, content: 'after', clientId: `ok-${field}-${id}` });
      const ack = await a.next((f) => f.type === 'ack');
      expect((await b.next()).id).toBe(ack.id);
      expect(b.frames).toEqual([]);
      const stored = await history();
      expect(stored.at(-1)).toMatchObject({ id: ack.id, content: 'after' });
      expect(stored.some((m) => m.content.includes('\ufffd'))).toBe(false);
      a.close();
      b.close();
    },
  );

  it('delivers and stores escaped well-formed text exactly as sent', async () => {
    const a = await connect(server, { token: alice.token });
    const b = await connect(server, { token: bob.token });
    a.send(
      `{"receiver":"${bob.username}","content":"\\ud83d\\ude00 \\u00e9\\u0041","clientId":"p1"}`,
    );
    const ack = await a.next();
    expect(ack).toMatchObject({ type: 'ack', clientId: 'p1' });
    const live = await b.next();
    expect(live.content).toBe('😀 éA');
    expect((await history()).find((m) => m.id === ack.id)?.content).toBe(live.content);
    a.close();
    b.close();
  });
});
