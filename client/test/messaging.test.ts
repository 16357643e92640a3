// Messaging through the library against a real server: sends settled by their acks, every
// stream event once and in order (one's own included), edits and deletions, refusals as typed
// errors, receipts, typing and presence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../../test/helpers/server.js';
import { ChatError, type ChatClient } from '../src/index.js';
import { client, reach, record, signUp, until } from './support.js';

let server: TestServer;
const clients: ChatClient[] = [];
const open = (options = {}) => {
  const c = client(server, options);
  clients.push(c);
  return c;
};

beforeAll(async () => {
  server = await startServer({ PRESENCE_COALESCE_MS: '50', RECEIPTS_FLUSH_MS: '50' });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.close();
});

describe('sending', () => {
  it('delivers a direct message; both sides see it once as a message event, in order', async () => {
    const alice = open();
    const bob = open();
    const aliceName = await signUp(alice);
    const bobName = await signUp(bob);
    const a = record(alice);
    const b = record(bob);
    alice.connect();
    bob.connect();
    await Promise.all([reach(alice, 'online'), reach(bob, 'online')]);

    const sent = await alice.send({ to: bobName, content: 'hi bob' });
    expect(sent).toMatchObject({
      id: expect.stringMatching(/^\d+$/),
      clientId: expect.any(String),
    });
    await until(() => b.of('message').length === 1, 5000, 'bob gets the message');
    expect(b.of('message')[0]).toMatchObject({
      id: sent.id,
      sender: aliceName,
      receiver: bobName,
      content: 'hi bob',
    });
    // Alice's own message comes back as its stream event (with its conversationId).
    await until(() => a.of('message').length === 1, 5000, 'alice sees her own message');
    expect(a.of('message')[0]).toMatchObject({
      id: sent.id,
      conversationId: b.of('message')[0]?.conversationId,
    });
    expect(a.of('sent').map((s) => s.ack.id)).toEqual([sent.id]);

    const replies = await Promise.all(
      [1, 2, 3].map((n) => bob.send({ to: aliceName, content: `r${n}` })),
    );
    await until(() => a.of('message').length === 4, 5000, 'alice gets the replies');
    expect(a.of('message').map((m) => m.content)).toEqual(['hi bob', 'r1', 'r2', 'r3']);
    expect(a.of('message').map((m) => m.id)).toEqual([sent.id, ...replies.map((r) => r.id)]);
    expect(alice.syncCursor).toBe(replies[2]?.id);
  });

  it('sends to a group, edits and deletes, each settled by its ack', async () => {
    const alice = open();
    const bob = open();
    await signUp(alice);
    const bobName = await signUp(bob);
    const b = record(bob);
    const group = await alice.createGroup({ title: 'team', members: [bobName] });
    expect(group).toMatchObject({ kind: 'group', title: 'team', memberCount: 2, role: 'admin' });
    alice.connect();
    bob.connect();
    await Promise.all([reach(alice, 'online'), reach(bob, 'online')]);

    const m = await alice.send({ conversationId: group.id, content: 'hello team' });
    const edit = await alice.edit(m.id, 'hello, team');
    const del = await alice.delete(m.id);
    await until(() => b.of('delete').length === 1, 5000, 'bob sees the deletion');
    expect(b.of('conversation')[0]).toMatchObject({ action: 'created', conversationId: group.id });
    expect(b.of('message')[0]).toMatchObject({ id: m.id, content: 'hello team' });
    expect(b.of('edit')[0]).toMatchObject({ id: edit.id, messageId: m.id, content: 'hello, team' });
    expect(b.of('delete')[0]).toMatchObject({ id: del.id, messageId: m.id });
    expect(b.of('stream').map((e) => e.type)).toEqual([
      'conversation',
      'message',
      'edit',
      'delete',
    ]);

    const history = await bob.conversationMessages(group.id);
    expect(history.messages).toHaveLength(1);
    expect(history.messages[0]).toMatchObject({ id: m.id, deletedAt: expect.any(String) });
  });

  it('rejects refused frames with the error frame’s code; invalid content never leaves', async () => {
    const alice = open();
    const bob = open();
    await signUp(alice);
    const bobName = await signUp(bob);
    const a = record(alice);
    alice.connect();
    await reach(alice, 'online');

    const refused = await alice.send({ to: 'nobody_here_at_all', content: 'x' }).catch((e) => e);
    expect(refused).toBeInstanceOf(ChatError);
    expect(refused).toMatchObject({ code: 'unknown_receiver' });
    expect(a.of('failed').map((f) => f.error.code)).toEqual(['unknown_receiver']);

    const theirs = bob.send({ to: (await alice.me()).username, content: 'mine' });
    // Bob is not connected: his send waits in the outbox until he is.
    expect(bob.pending().map((e) => e.frame)).toMatchObject([{ content: 'mine' }]);
    bob.connect();
    const sent = await theirs;
    await expect(alice.edit(sent.id, 'not yours')).rejects.toMatchObject({
      code: 'not_message_sender',
    });
    await expect(alice.send({ to: bobName, content: '' })).rejects.toMatchObject({
      code: 'invalid_message',
    });
    expect(alice.pending()).toEqual([]);
  });
});

describe('receipts, typing and presence', () => {
  it('reports them as events', async () => {
    const alice = open();
    const bob = open();
    const aliceName = await signUp(alice);
    const bobName = await signUp(bob);
    const a = record(alice);
    const b = record(bob);
    alice.connect();
    await reach(alice, 'online');
    const m = await alice.send({ to: bobName, content: 'read me' });

    bob.connect();
    await until(() => b.of('message').length === 1, 5000, 'bob gets the message');
    await until(
      () => a.of('presence').some((p) => p.user === bobName && p.online),
      5000,
      'presence',
    );
    bob.read({ with: aliceName }, m.id);
    await until(() => a.of('receipt').some((r) => r.kind === 'read'), 5000, 'a read receipt');
    expect(a.of('receipt').find((r) => r.kind === 'read')).toMatchObject({
      user: bobName,
      upTo: m.id,
    });

    bob.typing({ with: aliceName });
    bob.typing({ with: aliceName }); // within typingIntervalMs: not sent again
    await until(() => a.of('typing').length === 1, 5000, 'typing');
    expect(a.of('typing')[0]).toMatchObject({ user: bobName, expiresInMs: expect.any(Number) });

    const list = await alice.conversations();
    expect(list.conversations[0]).toMatchObject({ kind: 'direct', lastMessage: { id: m.id } });
  });
});

describe('HTTP helpers', () => {
  it('users, groups, blocks and settings: typed answers from the documented routes', async () => {
    const alice = open();
    const bob = open();
    const carol = open();
    const aliceName = await signUp(alice);
    const bobName = await signUp(bob);
    const carolName = await signUp(carol);

    expect(await alice.getUser(bobName.toUpperCase())).toMatchObject({
      username: bobName,
      online: false,
    });
    expect((await alice.searchUsers(bobName)).map((u) => u.username)).toEqual([bobName]);
    await expect(alice.getUser('nobody_at_all')).rejects.toMatchObject({
      code: 'user_not_found',
      status: 404,
    });

    const group = await alice.createGroup({ members: [bobName] });
    expect(group.title).toBeNull();
    expect((await alice.renameGroup(group.id, 'renamed')).title).toBe('renamed');
    expect((await alice.addMembers(group.id, [carolName])).memberCount).toBe(3);
    expect(
      (await alice.setRole(group.id, bobName, 'admin')).members.find((m) => m.username === bobName),
    ).toMatchObject({ role: 'admin' });
    await alice.removeMember(group.id, carolName);
    await bob.leaveGroup(group.id);
    expect((await alice.conversation(group.id)).memberCount).toBe(1);
    await expect(bob.conversation(group.id)).rejects.toMatchObject({
      code: 'conversation_not_found',
    });

    await alice.block(bobName);
    expect((await alice.blocks()).map((u) => u.username)).toEqual([bobName]);
    await alice.unblock(bobName);
    expect(await alice.blocks()).toEqual([]);
    expect(await alice.settings()).toEqual({ readReceipts: true, showLastSeen: true });
    expect(await alice.updateSettings({ showLastSeen: false })).toEqual({
      readReceipts: true,
      showLastSeen: false,
    });

    const sessions = await alice.sessions();
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ current: true });
    await expect(alice.revokeSession('0')).rejects.toMatchObject({ code: 'session_not_found' });
    expect((await alice.syncPage()).messages.map((e) => e.type)).toContain('conversation');
    expect(aliceName).toBe(alice.user?.username);
  });
});
