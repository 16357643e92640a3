// The connection against a real server: resume across a server restart (same data directory
// and port) with every event once and in order, the outbox resent with the same clientId after
// a connection dropped between storing and acking, stopping for good on 4001 and on a refused
// handshake (401, 403), and reconnection delays that honour Retry-After.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  account,
  connect,
  PASSWORD,
  request,
  startServer,
  type TestServer,
} from '../../test/helpers/server.js';
import { compareIds, type ChatClient, type ConnectionState } from '../src/index.js';
import {
  browserLikeWebSocket,
  client,
  gatedFetch,
  instrumentedWebSocket,
  reach,
  record,
  signUp,
  sleep,
  until,
} from './support.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});
const track = (c: ChatClient) => {
  cleanup.push(() => c.close());
  return c;
};

/** Ids in strictly increasing order, so also without duplicates. */
const increasing = (ids: string[]) =>
  ids.every((id, i) => i === 0 || compareIds(ids[i - 1]!, id) < 0);

describe('reconnect and resume', () => {
  it('across a server restart: every stream event once, in order; the outbox goes out', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-client-restart-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    let server: TestServer = await startServer({}, {}, { dir });
    cleanup.push(() => server.close());
    const port = Number(new URL(server.url).port);

    const gate = gatedFetch();
    const alice = track(client(server, { fetch: gate.fetch }));
    await signUp(alice);
    const bob = await account(server);
    const a = record(alice);
    alice.connect();
    await reach(alice, 'online');

    let bobWs = await connect(server, { token: bob.token });
    const aliceName = alice.user!.username;
    for (const content of ['m1', 'm2'])
      bobWs.send({ receiver: aliceName, content, clientId: content });
    await bobWs.next((f) => f.type === 'ack' && f.clientId === 'm2');
    await until(() => a.of('message').length === 2, 5000, 'm1 and m2');

    // Restart: the server closes every socket with 1001 and stops listening.
    await server.close();
    await until(() =>
      a.of('state').some((s) => s.status === 'reconnecting' && s.closeCode === 1001),
    );
    const whileDown = alice.send({
      to: bob.username,
      content: 'written while the server was down',
    });
    await until(
      () =>
        a
          .of('state')
          .filter((s) => s.status === 'reconnecting' && s.error?.code === 'network_error').length >=
        2,
      5000,
      'failed attempts while down',
    );

    // Same data directory, same port. Alice stays offline (her ticket held) while Bob writes.
    gate.hold();
    server = await startServer({}, {}, { dir, port });
    bobWs = await connect(server, { token: bob.token });
    for (const content of ['m3', 'm4'])
      bobWs.send({ receiver: aliceName, content, clientId: content });
    await bobWs.next((f) => f.type === 'ack' && f.clientId === 'm4');
    expect(alice.state.status).not.toBe('online');
    gate.release();

    const sent = await whileDown;
    await until(() => a.of('message').length === 5, 5000, 'the replay and her own message');
    bobWs.close();

    const seen = a.of('stream').map((e) => e.id);
    expect(increasing(seen)).toBe(true);
    expect(a.of('message').map((m) => m.content)).toEqual([
      'm1',
      'm2',
      'm3',
      'm4',
      'written while the server was down',
    ]);
    expect(a.of('message')[4]?.id).toBe(sent.id);
    // Exactly the stream as the server has it.
    const stream = await alice.syncPage({ after: '0', limit: 1000 });
    expect(seen).toEqual(stream.messages.map((m) => m.id));
    expect(alice.syncCursor).toBe(stream.lastId);
    // The states the application saw: online, lost (1001), reconnecting, back.
    const statuses = a.of('state').map((s) => s.status);
    expect(statuses.indexOf('online')).toBeLessThan(statuses.lastIndexOf('reconnecting'));
    expect(statuses.at(-1)).toBe('online');
  });

  it('resends an unacked send with the same clientId: stored once, settled with the first id', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const ws = instrumentedWebSocket();
    const alice = track(client(server, { WebSocket: ws.WebSocket }));
    await signUp(alice);
    const bob = track(client(server));
    const bobName = await signUp(bob);
    const a = record(alice);
    const b = record(bob);
    alice.connect();
    bob.connect();
    await Promise.all([reach(alice, 'online'), reach(bob, 'online')]);

    // The message is stored and delivered, but the ack never reaches Alice: her connection
    // drops first (terminated without a close frame: 1006).
    ws.control.dropAcks = true;
    const sending = alice.send({ to: bobName, content: 'exactly once' });
    await until(() => b.of('message').length === 1, 5000, 'stored and delivered');
    ws.control.dropAcks = false;
    ws.sockets.at(-1)!.terminate();

    const sent = await sending;
    const frames = ws.sent.filter((f) => f.content === 'exactly once');
    expect(frames).toHaveLength(2);
    expect(frames[1].clientId).toBe(frames[0].clientId);
    expect(sent).toMatchObject({ id: b.of('message')[0]!.id, clientId: frames[0].clientId });
    expect(a.of('state').some((s) => s.status === 'reconnecting' && s.closeCode === 1006)).toBe(
      true,
    );

    await until(() => a.of('message').length === 1, 5000, 'her own message, once');
    await sleep(100);
    expect(a.of('message').map((m) => m.id)).toEqual([sent.id]);
    expect(b.of('message')).toHaveLength(1);
    const history = await bob.history(alice.user!.username);
    expect(history.messages.filter((m) => m.content === 'exactly once')).toHaveLength(1);
    expect(alice.pending()).toEqual([]);
  });
});

describe('stopping', () => {
  it('stops and signs out on 4001 (session revoked with DELETE /sessions/{id}); never reconnects', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const gate = gatedFetch();
    const alice = track(client(server, { fetch: gate.fetch }));
    const name = await signUp(alice);
    const a = record(alice);
    alice.connect();
    await reach(alice, 'online');

    const other = await request(server, 'POST', '/login', {
      body: { username: name, password: PASSWORD },
    });
    const sessions = await request(server, 'GET', '/sessions', { token: other.body.token });
    const target = sessions.body.sessions.find((s: { current: boolean }) => !s.current);
    const tickets = () => gate.paths.filter((p) => p === '/websocket/ticket').length;
    const before = tickets();
    const revoked = await request(server, 'DELETE', `/sessions/${target.id}`, {
      token: other.body.token,
    });
    expect(revoked.status).toBe(204);

    await reach(alice, 'stopped');
    expect(alice.state).toMatchObject({ status: 'stopped', reason: 'session_revoked' });
    await until(() => a.of('signedOut').length === 1);
    expect(a.of('signedOut')).toEqual([{ reason: 'session_revoked' }]);
    expect(alice.user).toBeNull();
    await sleep(400); // twice the largest backoff of these clients
    expect(tickets()).toBe(before);
    expect(alice.state.status).toBe('stopped');
    await expect(alice.send({ to: name, content: 'x' })).rejects.toMatchObject({
      code: 'signed_out',
    });
  });

  it('stops on a handshake refused with 401 or 403', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const badTicket = instrumentedWebSocket({ url: (u) => u.replace(/ticket=[^&]+/, 'ticket=x') });
    const alice = track(client(server, { WebSocket: badTicket.WebSocket }));
    await signUp(alice);
    alice.connect();
    await reach(alice, 'stopped');
    expect(alice.state).toMatchObject({
      status: 'stopped',
      reason: 'unauthorized',
      error: { code: 'unauthorized', status: 401 },
    });

    const foreign = instrumentedWebSocket({ headers: { origin: 'https://elsewhere.example' } });
    const bob = track(client(server, { WebSocket: foreign.WebSocket }));
    await signUp(bob);
    bob.connect();
    await reach(bob, 'stopped');
    expect(bob.state).toMatchObject({
      status: 'stopped',
      reason: 'forbidden',
      error: { code: 'forbidden_origin', status: 403 },
    });
    expect(badTicket.sockets).toHaveLength(1);
    expect(foreign.sockets).toHaveLength(1);
  });
});

describe('in a browser, where a refused handshake’s status cannot be seen', () => {
  it('finds a session revoked while offline through the ticket request, and stops', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const alice = track(client(server, { WebSocket: browserLikeWebSocket() }));
    const name = await signUp(alice);
    const a = record(alice);
    alice.connect();
    await reach(alice, 'online');
    alice.disconnect();

    // Revoked from another device while this one is offline: no 4001 reaches it.
    const other = await request(server, 'POST', '/login', {
      body: { username: name, password: PASSWORD },
    });
    const sessions = await request(server, 'GET', '/sessions', { token: other.body.token });
    const mine = sessions.body.sessions.find((s: { current: boolean }) => !s.current);
    await request(server, 'DELETE', `/sessions/${mine.id}`, { token: other.body.token });

    alice.connect();
    await reach(alice, 'stopped');
    expect(alice.state).toMatchObject({ reason: 'signed_out' });
    expect(a.of('signedOut')).toEqual([{ reason: 'refresh_failed' }]);
  });

  it('retries a refused handshake with backoff instead of stopping', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const WebSocket = browserLikeWebSocket({ origin: 'https://elsewhere.example' });
    const alice = track(client(server, { WebSocket }));
    await signUp(alice);
    const a = record(alice);
    alice.connect();
    await until(() => a.of('state').filter((s) => s.status === 'reconnecting').length >= 3);
    expect(a.of('state').find((s) => s.status === 'reconnecting')).toMatchObject({
      error: { code: 'handshake_refused' },
      closeCode: 1006,
    });
  });
});

describe('backoff', () => {
  it('waits at least Retry-After after a handshake refused with 429, then connects', async () => {
    // 60 handshakes a minute per address: a refusal says Retry-After: 1, a token a second.
    const server = await startServer({ RATE_WS_HANDSHAKES_PER_MIN: '60' });
    cleanup.push(() => server.close());
    const alice = track(client(server, { backoff: { baseMs: 10, maxMs: 50 } }));
    await signUp(alice);
    const states: Array<ConnectionState & { at: number }> = [];
    alice.on('state', (s) => states.push({ ...s, at: Date.now() }));

    // Spend the address's handshakes (refused for want of credentials, but counted).
    let status = 0;
    for (let i = 0; i < 100 && status !== 429; i++) {
      status = await connect(server).then(
        () => 101,
        (e: { status: number }) => e.status,
      );
    }
    expect(status).toBe(429);

    alice.connect();
    await reach(alice, 'online', 10_000);
    const refused = states.find((s) => s.status === 'reconnecting');
    expect(refused).toMatchObject({ error: { code: 'rate_limited', status: 429, retryAfter: 1 } });
    expect(refused!.status === 'reconnecting' && refused!.delayMs).toBeGreaterThanOrEqual(1000);
    // Without Retry-After these clients would have tried again within 50 ms.
    const next = states.find((s) => s.status === 'connecting' && s.at > refused!.at);
    expect(next!.at - refused!.at).toBeGreaterThanOrEqual(990);
  });
});
