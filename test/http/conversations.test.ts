// Conversations over HTTP: create a group, list with unread counts, one conversation, history
// from a member's joining, rename, members and roles, leaving; every refusal in the error shape,
// and a non-member gets 404 for anything of a group's. Blocks and settings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  account,
  connect,
  request,
  startServer,
  type Account,
  type TestServer,
} from '../helpers/server.js';
import { expectError, expectUnauthorized } from './support.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    GROUP_MAX_MEMBERS: '4',
    GROUP_TITLE_MAX: '10',
    CONVERSATION_MEMBER_PREVIEW: '3',
    RATE_MESSAGES_PER_SEC: '1000',
    RATE_MESSAGES_BURST: '1000',
  });
});
afterAll(() => server.close());

const create = (as: Account, title: string, members: string[]) =>
  request(server, 'POST', '/conversations', { token: as.token, body: { title, members } });

/** Sends over the WebSocket and waits for the ack; returns the message id. */
async function say(as: Account, frame: Record<string, unknown>): Promise<string> {
  const c = await connect(server, { token: as.token });
  c.send(frame);
  const ack = await c.next((f) => f.type === 'ack' || f.type === 'error');
  c.close();
  if (ack.type !== 'ack') throw new Error(JSON.stringify(ack));
  return ack.id;
}

describe('groups over HTTP', () => {
  it('creates a group (201) with the caller as admin, and lists it with its members', async () => {
    const [a, b, c] = [await account(server), await account(server), await account(server)];
    const res = await create(a, 'team', [b.username.toUpperCase(), c.username]);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: expect.stringMatching(/^\d+$/),
      kind: 'group',
      title: 'team',
      memberCount: 3,
      role: 'admin',
      unreadCount: 0,
      lastMessage: null,
    });
    expect(res.body.members.map((m: { username: string }) => m.username)).toEqual([
      a.username,
      b.username,
      c.username,
    ]);
    const list = await request(server, 'GET', '/conversations', { token: b.token });
    expect(list.status).toBe(200);
    expect(list.body.conversations).toHaveLength(1);
    expect(list.body.conversations[0]).toMatchObject({ id: res.body.id, role: 'member' });
    const one = await request(server, 'GET', `/conversations/${res.body.id}`, { token: c.token });
    expect(one.body).toMatchObject({ id: res.body.id, title: 'team' });
  });

  it('refuses bad bodies, unknown members, too many members and long titles', async () => {
    const [a, b] = [await account(server), await account(server)];
    expectError(await create(a, '', [b.username]), 400, 'invalid_request');
    expectError(await create(a, '   ', [b.username]), 400, 'invalid_request');
    expectError(await create(a, '12345678901', [b.username]), 400, 'invalid_request');
    expect((await create(a, '😀'.repeat(10), [b.username])).status).toBe(201);
    expectError(
      await request(server, 'POST', '/conversations', {
        token: a.token,
        body: { title: 'x', members: 'bob' },
      }),
      400,
      'invalid_request',
    );
    expectError(await create(a, 'x', ['nobody-here']), 404, 'user_not_found');
    const bare = await request(server, 'POST', '/conversations', { token: a.token, body: {} });
    expect(bare.status).toBe(201);
    expect(bare.body).toMatchObject({ title: null, memberCount: 1, role: 'admin' });
    const many = [await account(server), await account(server), await account(server), b];
    expectError(
      await create(
        a,
        'x',
        many.map((m) => m.username),
      ),
      409,
      'member_limit',
    );
    expectUnauthorized(await request(server, 'GET', '/conversations'));
    expectUnauthorized(
      await request(server, 'POST', '/conversations', { body: { title: 'x', members: [] } }),
    );
  });

  it('answers 404 for anything of a group asked by a non-member', async () => {
    const [a, b, outsider] = [await account(server), await account(server), await account(server)];
    const id = (await create(a, 'secret', [b.username])).body.id;
    const as = { token: outsider.token };
    expectError(
      await request(server, 'GET', `/conversations/${id}`, as),
      404,
      'conversation_not_found',
    );
    expectError(
      await request(server, 'GET', `/conversations/${id}/messages`, as),
      404,
      'conversation_not_found',
    );
    expectError(
      await request(server, 'PATCH', `/conversations/${id}`, { ...as, body: { title: 'mine' } }),
      404,
      'conversation_not_found',
    );
    expectError(
      await request(server, 'POST', `/conversations/${id}/members`, {
        ...as,
        body: { members: [outsider.username] },
      }),
      404,
      'conversation_not_found',
    );
    expectError(
      await request(server, 'DELETE', `/conversations/${id}/members/${b.username}`, as),
      404,
      'conversation_not_found',
    );
    expectError(
      await request(server, 'GET', '/conversations/999999999', as),
      404,
      'conversation_not_found',
    );
    expectError(await request(server, 'GET', '/conversations/abc', as), 400, 'invalid_request');
  });

  it('renames (admins only), adds members (admins only), promotes, and keeps an admin', async () => {
    const [a, b, c] = [await account(server), await account(server), await account(server)];
    const id = (await create(a, 'old', [b.username])).body.id;
    const rename = (as: Account, title: string) =>
      request(server, 'PATCH', `/conversations/${id}`, { token: as.token, body: { title } });
    expectError(await rename(b, 'mine'), 403, 'not_admin');
    expect((await rename(a, 'new')).body).toMatchObject({ title: 'new' });
    const add = (as: Account, members: string[]) =>
      request(server, 'POST', `/conversations/${id}/members`, {
        token: as.token,
        body: { members },
      });
    expectError(await add(b, [c.username]), 403, 'not_admin');
    expectError(await add(a, []), 400, 'invalid_request');
    expect((await add(a, [c.username])).body).toMatchObject({ memberCount: 3 });
    expect((await add(a, [c.username])).body).toMatchObject({ memberCount: 3 });
    const leave = (as: Account, who: Account) =>
      request(server, 'DELETE', `/conversations/${id}/members/${who.username}`, {
        token: as.token,
      });
    expectError(await leave(a, a), 409, 'last_admin');
    expectError(await leave(b, c), 403, 'not_admin');
    expectError(await leave(a, await account(server)), 404, 'member_not_found');
    const role = (as: Account, who: Account, r: string) =>
      request(server, 'PATCH', `/conversations/${id}/members/${who.username}`, {
        token: as.token,
        body: { role: r },
      });
    expectError(await role(b, b, 'admin'), 403, 'not_admin');
    expectError(await role(a, b, 'owner'), 400, 'invalid_request');
    expect((await role(a, b, 'admin')).status).toBe(200);
    expect((await leave(a, a)).status).toBe(204);
    expectError(
      await request(server, 'GET', `/conversations/${id}`, { token: a.token }),
      404,
      'conversation_not_found',
    );
    expect((await leave(b, c)).status).toBe(204);
    const left = await request(server, 'GET', `/conversations/${id}`, { token: b.token });
    expect(left.body.memberCount).toBe(1);
  });

  it('shows a new member the history from their joining on, with unread counts that skip their own', async () => {
    const [a, b, c] = [await account(server), await account(server), await account(server)];
    const id = (await create(a, 'h', [b.username])).body.id;
    await say(a, { conversationId: id, content: 'before carol', clientId: 'h1' });
    await request(server, 'POST', `/conversations/${id}/members`, {
      token: a.token,
      body: { members: [c.username] },
    });
    const seen = await say(a, { conversationId: id, content: 'after carol', clientId: 'h2' });
    await say(c, { conversationId: id, content: 'carol here', clientId: 'h3' });
    const history = await request(server, 'GET', `/conversations/${id}/messages`, {
      token: c.token,
    });
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'after carol',
      'carol here',
    ]);
    expect(history.body.messages[0]).toMatchObject({
      id: seen,
      conversationId: id,
      sender: a.username,
    });
    expect(history.body.messages[0]).not.toHaveProperty('receiver');
    const forB = await request(server, 'GET', `/conversations/${id}/messages?limit=2`, {
      token: b.token,
    });
    expect(forB.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'after carol',
      'carol here',
    ]);
    expect(forB.body.hasMore).toBe(true);
    const list = await request(server, 'GET', '/conversations', { token: b.token });
    expect(list.body.conversations[0]).toMatchObject({
      id,
      unreadCount: 3,
      lastMessage: { content: 'carol here' },
    });
    const mine = await request(server, 'GET', `/conversations/${id}`, { token: c.token });
    expect(mine.body.unreadCount).toBe(1);
  });

  it('pages the list most recent activity first with `before`', async () => {
    const a = await account(server);
    const others = [await account(server), await account(server), await account(server)];
    const ids = [];
    for (const [i, o] of others.entries())
      ids.push((await create(a, `g${i}`, [o.username])).body.id);
    await say(others[0]!, { conversationId: ids[0], content: 'bump' });
    const first = await request(server, 'GET', '/conversations?limit=2', { token: a.token });
    expect(first.body.conversations.map((c: { id: string }) => c.id)).toEqual([ids[0], ids[2]]);
    expect(first.body.hasMore).toBe(true);
    const next = await request(
      server,
      'GET',
      `/conversations?limit=2&before=${first.body.conversations[1].lastActivityId}`,
      { token: a.token },
    );
    expect(next.body.conversations.map((c: { id: string }) => c.id)).toEqual([ids[1]]);
    expect(next.body.hasMore).toBe(false);
    expectError(
      await request(server, 'GET', '/conversations?limit=0', { token: a.token }),
      400,
      'invalid_request',
    );
  });
});

describe('blocks and settings over HTTP', () => {
  it('blocks and unblocks idempotently, lists blocks, and refuses oneself and unknown users', async () => {
    const [a, b] = [await account(server), await account(server)];
    const block = (method: string, who: string) =>
      request(server, method, `/users/${who}/block`, { token: a.token });
    expect((await block('POST', b.username.toUpperCase())).status).toBe(204);
    expect((await block('POST', b.username)).status).toBe(204);
    const list = await request(server, 'GET', '/users/me/blocks', { token: a.token });
    expect(list.body.users).toEqual([expect.objectContaining({ id: b.id, username: b.username })]);
    expectError(await block('POST', a.username), 400, 'invalid_request');
    expectError(await block('POST', 'no-such-user'), 404, 'user_not_found');
    expect((await block('DELETE', b.username)).status).toBe(204);
    expect((await block('DELETE', b.username)).status).toBe(204);
    expect(
      (await request(server, 'GET', '/users/me/blocks', { token: a.token })).body.users,
    ).toEqual([]);
    expectUnauthorized(await request(server, 'POST', `/users/${b.username}/block`));
  });

  it('reads and changes settings', async () => {
    const a = await account(server);
    const get = () => request(server, 'GET', '/users/me/settings', { token: a.token });
    expect((await get()).body).toEqual({ readReceipts: true, showLastSeen: true });
    const patched = await request(server, 'PATCH', '/users/me/settings', {
      token: a.token,
      body: { showLastSeen: false },
    });
    expect(patched.body).toEqual({ readReceipts: true, showLastSeen: false });
    expect((await get()).body).toEqual({ readReceipts: true, showLastSeen: false });
    expectError(
      await request(server, 'PATCH', '/users/me/settings', {
        token: a.token,
        body: { showLastSeen: 'no' },
      }),
      400,
      'invalid_request',
    );
  });
});
