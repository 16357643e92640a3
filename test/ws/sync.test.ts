// Offline delivery and reconnect: replay after a cursor on the handshake, by a sync frame and
// over HTTP, with no gap and no duplicate; history paging under concurrent inserts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  account,
  connect,
  request,
  startServer,
  type Account,
  type Client,
  type TestServer,
} from '../helpers/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    RATE_MESSAGES_PER_SEC: '10000',
    RATE_MESSAGES_BURST: '10000',
    SYNC_PAGE_SIZE: '7',
  });
});
afterAll(() => server.close());

/** Sends `n` messages from `from` to `to` and waits for every ack. */
async function sendMany(c: Client, to: Account, n: number, prefix: string): Promise<string[]> {
  for (let i = 0; i < n; i++)
    c.send({ receiver: to.username, content: `${prefix}${i}`, clientId: `${prefix}${i}` });
  const ids = [];
  for (let i = 0; i < n; i++) ids.push((await c.next((f) => f.type === 'ack')).id as string);
  return ids;
}

async function messagesUntilSynced(c: Client): Promise<{ messages: any[]; synced: any }> {
  const messages = [];
  for (;;) {
    const f = await c.next();
    if (f.type === 'synced') return { messages, synced: f };
    expect(f.type).toBe('message');
    messages.push(f);
  }
}

describe('sync', () => {
  it('replays 50 messages sent while the receiver was offline, in order, once, on ?after=', async () => {
    const alice = await account(server);
    const bob = await account(server);
    const a = await connect(server, { token: alice.token });
    const b = await connect(server, { token: bob.token });
    const [seen] = await sendMany(a, bob, 1, 'before');
    expect((await b.next()).id).toBe(seen);
    b.close();
    await b.closed;
    const ids = await sendMany(a, bob, 50, 'offline');
    const back = await connect(server, { token: bob.token, query: `after=${seen}` });
    const { messages, synced } = await messagesUntilSynced(back);
    expect(messages.map((m) => m.id)).toEqual(ids);
    expect(messages.map((m) => m.content)).toEqual(
      Array.from({ length: 50 }, (_, i) => `offline${i}`),
    );
    expect(synced.lastId).toBe(ids.at(-1));
    await new Promise((r) => setTimeout(r, 100));
    expect(back.frames).toEqual([]);
    a.close();
    back.close();
  });

  it('merges live messages sent during a replay with no gap and no duplicate', async () => {
    const alice = await account(server);
    const bob = await account(server);
    const a = await connect(server, { token: alice.token });
    const ids = await sendMany(a, bob, 40, 'old');
    const b = await connect(server, { token: bob.token, query: 'after=0' });
    // Live traffic while the replay pages through the store (page size 7).
    const live = sendMany(a, bob, 40, 'live');
    const liveIds = await live;
    const all = [...ids, ...liveIds];
    const received: string[] = [];
    while (received.length < all.length) {
      const f = await b.next((x) => x.type === 'message');
      received.push(f.id);
    }
    expect(received).toEqual(all);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.frames.filter((f) => f.type === 'message')).toEqual([]);
    a.close();
    b.close();
  });

  it('replays on a sync frame, including messages the user sent from another device', async () => {
    const alice = await account(server);
    const bob = await account(server);
    const a = await connect(server, { token: alice.token });
    const ids = await sendMany(a, bob, 5, 's');
    const a2 = await connect(server, { token: alice.token });
    a2.send({ type: 'sync', after: ids[1] });
    const { messages, synced } = await messagesUntilSynced(a2);
    expect(messages.map((m) => m.id)).toEqual(ids.slice(2));
    expect(messages[0]).toMatchObject({ sender: alice.username, receiver: bob.username });
    expect(synced.lastId).toBe(ids[4]);
    a2.send({ type: 'sync' });
    expect((await messagesUntilSynced(a2)).messages.map((m) => m.id)).toEqual(ids);
    a2.send({ type: 'sync', after: 'x' });
    expect(await a2.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    a.close();
    a2.close();
  });

  it('says synced with lastId null on an empty stream', async () => {
    const carol = await account(server);
    const c = await connect(server, { token: carol.token, query: 'after=0' });
    expect(await c.next()).toEqual({ type: 'synced', lastId: '0' });
    c.send({ type: 'sync' });
    expect(await c.next()).toEqual({ type: 'synced', lastId: null });
    c.close();
  });

  it('pages the stream over HTTP until hasMore is false', async () => {
    const alice = await account(server);
    const bob = await account(server);
    const a = await connect(server, { token: alice.token });
    const ids = await sendMany(a, bob, 25, 'h');
    a.close();
    const got: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const res = await request(server, 'GET', `/sync?limit=10${after ? `&after=${after}` : ''}`, {
        token: bob.token,
      });
      expect(res.status).toBe(200);
      got.push(...res.body.messages.map((m: { id: string }) => m.id));
      after = res.body.lastId;
      if (!res.body.hasMore) break;
    }
    expect(got).toEqual(ids);
    const done = await request(server, 'GET', `/sync?after=${after}`, { token: bob.token });
    expect(done.body).toEqual({ messages: [], hasMore: false, lastId: after });
  });
});

describe('history', () => {
  it('pages backwards, oldest first per page, without skips or repeats under concurrent inserts', async () => {
    const alice = await account(server);
    const bob = await account(server);
    const a = await connect(server, { token: alice.token });
    const ids = await sendMany(a, bob, 30, 'x');
    const seen: string[] = [];
    let before: string | undefined;
    let page = 0;
    for (;;) {
      const res = await request(
        server,
        'GET',
        `/messages?with=${bob.username.toUpperCase()}&limit=7${before ? `&before=${before}` : ''}`,
        {
          token: alice.token,
        },
      );
      expect(res.status).toBe(200);
      const pageIds = res.body.messages.map((m: { id: string }) => m.id);
      expect(pageIds).toEqual([...pageIds].sort((x: string, y: string) => Number(x) - Number(y)));
      seen.unshift(...pageIds);
      if (page++ === 0) await sendMany(a, bob, 10, 'concurrent'); // newer messages arrive meanwhile
      if (!res.body.hasMore) break;
      before = pageIds[0];
    }
    expect(seen).toEqual(ids);
    const res = await request(server, 'GET', `/messages?with=${alice.username}`, {
      token: bob.token,
    });
    expect(res.body.messages).toHaveLength(40);
    expect(res.body.hasMore).toBe(false);
    expect(res.body.messages[0]).toEqual({
      id: ids[0],
      conversationId: expect.stringMatching(/^\d+$/),
      sender: alice.username,
      receiver: bob.username,
      content: 'x0',
      createdAt: expect.any(String),
    });
    a.close();
  });
});

describe('sync larger than the send queue', () => {
  it('replays to a reader that stops reading at its pace, without closing it with 1013', async () => {
    // 12,000 x 3.9 KB (47 MB) is more than the kernel buffers of both ends hold (up to 36 MB
    // here) and 2,800 times the 16 KiB queue: the replay has to wait for 'drain'.
    const small = await startServer({
      WS_SEND_QUEUE_BYTES: '16384',
      RATE_MESSAGES_PER_SEC: '100000',
      RATE_MESSAGES_BURST: '100000',
      SYNC_PAGE_SIZE: '500',
    });
    try {
      const alice = await account(small);
      const bob = await account(small);
      const a = await connect(small, { token: alice.token });
      const content = 'z'.repeat(3900);
      const n = 12_000;
      for (let i = 0; i < n; i++) a.send({ receiver: bob.username, content, clientId: `big${i}` });
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await a.next((f) => f.type === 'ack')).id as string);
      const b = await connect(small, { token: bob.token });
      const socket = (b.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      b.send({ type: 'sync' });
      // Keep not reading until the server's side of the socket pushes back, then a little more.
      type ServerSocket = { bufferedAmount: number; _socket?: { writableNeedDrain: boolean } };
      const serverSide = () =>
        [...small.app.gateway.hub.all()].find((c) => c.userId === bob.id)?.ws as unknown as
          ServerSocket | undefined;
      const deadline = Date.now() + 20_000;
      while (!serverSide()?._socket?.writableNeedDrain && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(serverSide()?._socket?.writableNeedDrain).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      // The replay waits for the reader: what it queued stays near the queue limit.
      expect(serverSide()!.bufferedAmount).toBeLessThan(4 * 16384);
      socket.resume();
      const { messages, synced } = await messagesUntilSynced(b);
      expect(messages.map((m) => m.id)).toEqual(ids);
      expect(synced.lastId).toBe(ids.at(-1));
      expect(b.ws.readyState).toBe(b.ws.OPEN);
      a.close();
      b.close();
    } finally {
      await small.close();
    }
  }, 60_000);
});
