// Conversations on the WebSocket: group messages, membership events live and by sync, edits and
// deletions, read and delivered receipts, typing, presence and blocking, with real clients.
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
    RATE_MESSAGES_PER_SEC: '1000',
    RATE_MESSAGES_BURST: '1000',
    RECEIPTS_FLUSH_MS: '20',
    PRESENCE_COALESCE_MS: '100',
    RATE_TYPING_PER_SEC: '1',
    RATE_TYPING_BURST: '2',
  });
});
afterAll(() => server.close());

const group = async (admin: Account, members: Account[], title = 'g'): Promise<string> => {
  const res = await request(server, 'POST', '/conversations', {
    token: admin.token,
    body: { title, members: members.map((m) => m.username) },
  });
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return res.body.id;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const answer = (c: Client, clientId: string) =>
  c.next((f) => (f.type === 'ack' || f.type === 'error') && f.clientId === clientId);

describe('group messages', () => {
  it('are acked and delivered to every member connection with conversationId; a non-member gets 404 and nothing', async () => {
    const [a, b, c, out] = [
      await account(server),
      await account(server),
      await account(server),
      await account(server),
    ];
    const id = await group(a, [b, c]);
    const [ca, cb, cc, co] = (await Promise.all(
      [a, b, c, out].map((u) => connect(server, { token: u.token })),
    )) as [Client, Client, Client, Client];
    ca.send({ conversationId: id, content: 'hi team', clientId: 'g1' });
    const ack = await answer(ca, 'g1');
    expect(ack).toMatchObject({ type: 'ack', clientId: 'g1' });
    for (const x of [cb, cc])
      expect(await x.next((f) => f.type === 'message')).toEqual({
        type: 'message',
        id: ack.id,
        conversationId: id,
        sender: a.username,
        content: 'hi team',
        createdAt: ack.createdAt,
      });
    co.send({ conversationId: id, content: 'let me in', clientId: 'x1' });
    expect(await answer(co, 'x1')).toMatchObject({ type: 'error', code: 'conversation_not_found' });
    co.send({ receiver: a.username, conversationId: id, content: 'both', clientId: 'x2' });
    expect(await answer(co, 'x2')).toMatchObject({ type: 'error', code: 'invalid_message' });
    await sleep(100);
    expect(co.frames.filter((f) => f.type !== 'error')).toEqual([]);
    for (const x of [ca, cb, cc, co]) x.close();
  });

  it("stops a removed member's deliveries at once: the removal is their last frame of the group", async () => {
    const [a, b] = [await account(server), await account(server)];
    const id = await group(a, [b]);
    const cb = await connect(server, { token: b.token });
    const ca = await connect(server, { token: a.token });
    const del = await request(server, 'DELETE', `/conversations/${id}/members/${b.username}`, {
      token: a.token,
    });
    expect(del.status).toBe(204);
    expect(await cb.next((f) => f.type === 'conversation')).toMatchObject({
      action: 'member_removed',
      members: [b.username],
      actor: a.username,
    });
    ca.send({ conversationId: id, content: 'after removal', clientId: 'r1' });
    await answer(ca, 'r1');
    await sleep(150);
    expect(cb.frames.filter((f) => f.type === 'message')).toEqual([]);
    ca.close();
    cb.close();
  });

  it('brings a client that was offline to the same events as one that stayed online', async () => {
    const [a, b, c] = [await account(server), await account(server), await account(server)];
    const id = await group(a, [b], 'before');
    const online = await connect(server, { token: b.token, query: 'after=0' });
    expect(await online.next()).toMatchObject({ type: 'conversation', action: 'created' });
    expect(await online.next()).toMatchObject({ type: 'synced' });
    const ca = await connect(server, { token: a.token });
    const changes = [
      () =>
        request(server, 'PATCH', `/conversations/${id}`, {
          token: a.token,
          body: { title: 'after' },
        }),
      () =>
        request(server, 'POST', `/conversations/${id}/members`, {
          token: a.token,
          body: { members: [c.username] },
        }),
    ];
    for (const change of changes) expect((await change()).status).toBe(200);
    ca.send({ conversationId: id, content: 'one', clientId: 's1' });
    const m = (await answer(ca, 's1')).id;
    ca.send({ type: 'edit', id: m, content: 'one!', clientId: 's2' });
    await answer(ca, 's2');
    ca.send({ conversationId: id, content: 'two', clientId: 's3' });
    const two = (await answer(ca, 's3')).id;
    ca.send({ type: 'delete', id: two, clientId: 's4' });
    await answer(ca, 's4');
    const live = [];
    while (live.length < 6) live.push(await online.next());
    const offline = await connect(server, { token: b.token, query: 'after=0' });
    const replayed = [];
    for (;;) {
      const f = await offline.next();
      if (f.type === 'synced') break;
      replayed.push(f);
    }
    // The replay starts at the group's creation; from then on it is what the online client saw,
    // except that replayed messages show their current state (edited, or a tombstone).
    expect(replayed[0]).toMatchObject({ type: 'conversation', action: 'created' });
    expect(replayed.slice(1).map((f) => [f.type, f.id])).toEqual(live.map((f) => [f.type, f.id]));
    expect(replayed.map((f) => f.action ?? f.type)).toEqual([
      'created',
      'renamed',
      'members_added',
      'message',
      'edit',
      'message',
      'delete',
    ]);
    expect(replayed[3]).toMatchObject({ content: 'one!', editedAt: expect.any(String) });
    expect(replayed[5]).toMatchObject({ deletedAt: expect.any(String) });
    expect(replayed[5]).not.toHaveProperty('content');
    for (const x of [online, offline, ca]) x.close();
  });
});

describe('edits and deletions', () => {
  it("are acked with their clientId, seen live by members, refused for others' messages, idempotent", async () => {
    const [a, b] = [await account(server), await account(server)];
    const ca = await connect(server, { token: a.token });
    const cb = await connect(server, { token: b.token });
    ca.send({ receiver: b.username, content: 'tpyo', clientId: 'e0' });
    const m = (await answer(ca, 'e0')).id;
    await cb.next((f) => f.type === 'message');
    cb.send({ type: 'edit', id: m, content: 'hijack', clientId: 'e1' });
    expect(await answer(cb, 'e1')).toMatchObject({ type: 'error', code: 'not_message_sender' });
    ca.send({ type: 'edit', id: '99999999', content: 'x', clientId: 'e2' });
    expect(await answer(ca, 'e2')).toMatchObject({ type: 'error', code: 'message_not_found' });
    ca.send({ type: 'edit', id: m, content: '', clientId: 'e3' });
    expect(await answer(ca, 'e3')).toMatchObject({ type: 'error', code: 'invalid_message' });
    ca.send({ type: 'edit', id: m, content: 'typo', clientId: 'e4' });
    const edit = await answer(ca, 'e4');
    expect(edit).toMatchObject({ type: 'ack', clientId: 'e4' });
    expect(await cb.next((f) => f.type === 'edit')).toMatchObject({
      id: edit.id,
      messageId: m,
      content: 'typo',
      sender: a.username,
    });
    ca.send({ type: 'edit', id: m, content: 'ignored', clientId: 'e4' });
    expect(await answer(ca, 'e4')).toEqual(edit);
    ca.send({ type: 'delete', id: m, clientId: 'd1' });
    const del = await answer(ca, 'd1');
    expect(await cb.next((f) => f.type === 'delete')).toMatchObject({ id: del.id, messageId: m });
    const history = await request(server, 'GET', `/messages?with=${a.username}`, {
      token: b.token,
    });
    expect(history.body.messages).toEqual([
      expect.objectContaining({
        id: m,
        editedAt: expect.any(String),
        deletedAt: expect.any(String),
      }),
    ]);
    expect(history.body.messages[0]).not.toHaveProperty('content');
    ca.close();
    cb.close();
  });
});

describe('receipts', () => {
  it("tells the sender of delivery, and every member and the reader's other devices of a read", async () => {
    const [a, b] = [await account(server), await account(server)];
    const ca = await connect(server, { token: a.token });
    const cb = await connect(server, { token: b.token });
    const cb2 = await connect(server, { token: b.token });
    ca.send({ receiver: b.username, content: 'ping', clientId: 'r1' });
    const { id } = await answer(ca, 'r1');
    const m = await cb.next((f) => f.type === 'message');
    expect(await ca.nextSignal((f) => f.kind === 'delivered')).toEqual({
      type: 'receipt',
      conversationId: m.conversationId,
      user: b.username,
      kind: 'delivered',
      upTo: id,
    });
    cb.send({ type: 'read', with: a.username, upTo: id });
    const read = {
      type: 'receipt',
      conversationId: m.conversationId,
      user: b.username,
      kind: 'read',
      upTo: id,
    };
    expect(await ca.nextSignal((f) => f.kind === 'read')).toEqual(read);
    expect(await cb2.nextSignal((f) => f.kind === 'read')).toEqual(read);
    // Watermarks only move forward: reading an older id again says nothing.
    cb.send({ type: 'read', conversationId: m.conversationId, upTo: '1' });
    const list = await request(server, 'GET', '/conversations', { token: b.token });
    expect(list.body.conversations[0]).toMatchObject({ unreadCount: 0 });
    await sleep(100);
    expect(ca.signals.filter((f) => f.kind === 'read')).toEqual([]);
    cb.send({ type: 'read', conversationId: '99999999', upTo: id, clientId: 'bad' });
    expect(await answer(cb, 'bad')).toMatchObject({
      type: 'error',
      code: 'conversation_not_found',
    });
    cb.send({ type: 'read', upTo: id, clientId: 'none' });
    expect(await answer(cb, 'none')).toMatchObject({
      type: 'error',
      code: 'conversation_not_found',
    });
    for (const x of [ca, cb, cb2]) x.close();
  });

  it('counts a message replayed by sync as delivered', async () => {
    const [a, b] = [await account(server), await account(server)];
    const ca = await connect(server, { token: a.token });
    ca.send({ receiver: b.username, content: 'while away', clientId: 'o1' });
    const { id } = await answer(ca, 'o1');
    const cb = await connect(server, { token: b.token, query: 'after=0' });
    await cb.next((f) => f.type === 'synced');
    expect(await ca.nextSignal((f) => f.kind === 'delivered')).toMatchObject({
      upTo: id,
      user: b.username,
    });
    ca.close();
    cb.close();
  });

  it("with read receipts off, others learn no reads, either way; the reader's own devices still do", async () => {
    const [a, b] = [await account(server), await account(server)];
    await request(server, 'PATCH', '/users/me/settings', {
      token: b.token,
      body: { readReceipts: false },
    });
    const ca = await connect(server, { token: a.token });
    const cb = await connect(server, { token: b.token });
    const cb2 = await connect(server, { token: b.token });
    ca.send({ receiver: b.username, content: 'x', clientId: 'q1' });
    const { id } = await answer(ca, 'q1');
    cb.send({ type: 'read', with: a.username, upTo: id });
    expect(await cb2.nextSignal((f) => f.kind === 'read')).toMatchObject({ upTo: id });
    cb.send({ receiver: a.username, content: 'y', clientId: 'q2' });
    const back = await answer(cb, 'q2');
    ca.send({ type: 'read', with: b.username, upTo: back.id });
    await sleep(150);
    expect(ca.signals.filter((f) => f.kind === 'read' && f.user === b.username)).toEqual([]);
    expect(cb.signals.filter((f) => f.kind === 'read' && f.user === a.username)).toEqual([]);
    for (const x of [ca, cb, cb2]) x.close();
  });
});

describe('typing', () => {
  it('is relayed to the other members only, limited per connection, and refused for non-members', async () => {
    const [a, b, c, out] = [
      await account(server),
      await account(server),
      await account(server),
      await account(server),
    ];
    const id = await group(a, [b, c]);
    const [ca, cb, cc, co] = (await Promise.all(
      [a, b, c, out].map((u) => connect(server, { token: u.token })),
    )) as [Client, Client, Client, Client];
    ca.send({ type: 'typing', conversationId: id });
    for (const x of [cb, cc])
      expect(await x.nextSignal((f) => f.type === 'typing')).toEqual({
        type: 'typing',
        conversationId: id,
        user: a.username,
        expiresInMs: 5000,
      });
    // Burst of 2 per connection: the third at once is dropped.
    ca.send({ type: 'typing', conversationId: id });
    ca.send({ type: 'typing', conversationId: id });
    await sleep(150);
    expect(cb.signals.filter((f) => f.type === 'typing')).toHaveLength(1);
    expect(ca.signals.filter((f) => f.type === 'typing')).toEqual([]);
    co.send({ type: 'typing', conversationId: id, clientId: 't' });
    expect(await answer(co, 't')).toMatchObject({ type: 'error', code: 'conversation_not_found' });
    for (const x of [ca, cb, cc, co]) x.close();
  });
});

describe('presence', () => {
  it('is pushed to contacts when a user comes and goes, with last seen unless hidden; a flap pushes nothing', async () => {
    const [a, b] = [await account(server), await account(server)];
    await group(a, [b]);
    const ca = await connect(server, { token: a.token });
    const cb = await connect(server, { token: b.token });
    expect(await ca.nextSignal((f) => f.type === 'presence' && f.user === b.username)).toEqual({
      type: 'presence',
      user: b.username,
      online: true,
      lastSeen: null,
    });
    cb.close();
    const gone = await ca.nextSignal((f) => f.type === 'presence' && f.user === b.username);
    expect(gone).toMatchObject({ online: false, lastSeen: expect.any(String) });
    // Connecting and leaving within the coalescing window tells no one.
    const flap = await connect(server, { token: b.token });
    flap.close();
    await sleep(300);
    expect(ca.signals.filter((f) => f.type === 'presence')).toEqual([]);
    await request(server, 'PATCH', '/users/me/settings', {
      token: b.token,
      body: { showLastSeen: false },
    });
    const again = await connect(server, { token: b.token });
    await ca.nextSignal((f) => f.type === 'presence' && f.online);
    again.close();
    expect(await ca.nextSignal((f) => f.type === 'presence' && !f.online)).toMatchObject({
      lastSeen: null,
    });
    ca.close();
  });
});

describe('blocking', () => {
  it("acks a blocked user's direct message as usual but never shows it to the blocker, live or in history", async () => {
    const [a, b] = [await account(server), await account(server)];
    const ca = await connect(server, { token: a.token });
    const cb = await connect(server, { token: b.token });
    expect(
      (await request(server, 'POST', `/users/${b.username}/block`, { token: a.token })).status,
    ).toBe(204);
    cb.send({ receiver: a.username, content: 'let me talk', clientId: 'b1' });
    expect(await answer(cb, 'b1')).toMatchObject({ type: 'ack', clientId: 'b1' });
    cb.send({ type: 'typing', with: a.username });
    await sleep(150);
    expect(ca.frames.filter((f) => f.type === 'message')).toEqual([]);
    expect(ca.signals.filter((f) => f.type === 'typing')).toEqual([]);
    // Presence of either is hidden from the other while the block stands.
    const asB = await request(server, 'GET', `/users/${a.username}`, { token: b.token });
    expect(asB.body.online).toBe(false);
    const asOther = await request(server, 'GET', `/users/${a.username}`, {
      token: (await account(server)).token,
    });
    expect(asOther.body.online).toBe(true);
    const hist = await request(server, 'GET', `/messages?with=${b.username}`, { token: a.token });
    expect(hist.body.messages).toEqual([]);
    const own = await request(server, 'GET', `/messages?with=${a.username}`, { token: b.token });
    expect(own.body.messages.map((m: { content: string }) => m.content)).toEqual(['let me talk']);
    // The blocker's reads are not told to the blocked user.
    ca.send({ receiver: b.username, content: 'bye', clientId: 'b2' });
    const bye = await answer(ca, 'b2');
    cb.send({ type: 'read', with: a.username, upTo: bye.id });
    ca.send({ type: 'read', with: b.username, upTo: bye.id });
    await sleep(150);
    expect(cb.signals.filter((f) => f.type === 'receipt' && f.user === a.username)).toEqual([]);
    expect(ca.signals.filter((f) => f.type === 'receipt' && f.user === b.username)).toEqual([]);
    ca.close();
    cb.close();
  });
});
