// Connection lifecycle: revocation closes sockets with 4001, shutdown with 1001, a slow reader
// is cut off with 1013 without hurting anyone else.
import { describe, expect, it } from 'vitest';
import { account, connect, PASSWORD, request, startServer } from '../helpers/server.js';

describe('revocation closes the session’s WebSockets with 4001 session_revoked', () => {
  it('on logout, DELETE /sessions/{id}, password change and refresh-token reuse', async () => {
    const server = await startServer();
    try {
      const alice = await account(server);

      const viaLogout = await connect(server, { token: alice.token });
      await request(server, 'POST', '/logout', { token: alice.token });
      expect(await viaLogout.closed).toEqual({ code: 4001, reason: 'session_revoked' });

      const login = async () =>
        (
          await request(server, 'POST', '/login', {
            body: { username: alice.username, password: PASSWORD },
          })
        ).body;
      const s1 = await login();
      const s2 = await login();
      const other = await connect(server, { token: s2.token });
      const sessions = await request(server, 'GET', '/sessions', { token: s1.token });
      const s2id = sessions.body.sessions.find((s: { current: boolean }) => !s.current).id;
      await request(server, 'DELETE', `/sessions/${s2id}`, { token: s1.token });
      expect((await other.closed).code).toBe(4001);

      const s3 = await login();
      const kept = await connect(server, { token: s1.token });
      const dropped = await connect(server, { token: s3.token });
      const change = await request(server, 'POST', '/users/me/password', {
        token: s1.token,
        body: { currentPassword: PASSWORD, newPassword: 'another fine passphrase' },
      });
      expect(change.status).toBe(204);
      expect((await dropped.closed).code).toBe(4001);
      expect(kept.ws.readyState).toBe(kept.ws.OPEN);
      kept.close();

      const s4 = (
        await request(server, 'POST', '/login', {
          body: { username: alice.username, password: 'another fine passphrase' },
        })
      ).body;
      const reused = await connect(server, { token: s4.token });
      const rotated = await request(server, 'POST', '/token/refresh', {
        body: { refreshToken: s4.refreshToken },
      });
      expect(rotated.status).toBe(200);
      const reuse = await request(server, 'POST', '/token/refresh', {
        body: { refreshToken: s4.refreshToken },
      });
      expect(reuse.status).toBe(401);
      expect((await reused.closed).code).toBe(4001);
    } finally {
      await server.close();
    }
  });
});

describe('shutdown', () => {
  it('closes every WebSocket with 1001 and refuses new ones', async () => {
    const server = await startServer();
    const alice = await account(server);
    const c = await connect(server, { token: alice.token });
    const closing = server.close();
    expect((await c.closed).code).toBe(1001);
    await closing;
  });
});

describe('slow reader', () => {
  it('closes a connection whose send queue overflows with 1013; others keep receiving', async () => {
    // The queue (512 KiB) holds more than one round (100 x 3.9 KB), and the fast reader takes
    // every round before the next is sent, so only the paused reader can overflow.
    const server = await startServer({
      WS_SEND_QUEUE_BYTES: String(512 * 1024),
      RATE_MESSAGES_PER_SEC: '100000',
      RATE_MESSAGES_BURST: '100000',
    });
    try {
      const alice = await account(server);
      const bob = await account(server);
      const slow = await connect(server, { token: bob.token });
      const fast = await connect(server, { token: bob.token });
      // Stop reading: the kernel buffers fill, then the server's queue.
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const a = await connect(server, { token: alice.token });
      const content = 'y'.repeat(3900);
      const slowClosedByServer = () => [...server.app.gateway.hub.all()].some((c) => !c.open);
      let rounds = 0;
      // At most 80 rounds (31 MB): stops as soon as the server has closed the paused reader.
      for (; rounds < 80 && !slowClosedByServer(); rounds++) {
        for (let i = 0; i < 100; i++)
          a.send({ receiver: bob.username, content, clientId: `s${rounds}-${i}` });
        for (let i = 0; i < 100; i++) await a.next((f) => f.type === 'ack');
        for (let i = 0; i < 100; i++) await fast.next((f) => f.type === 'message');
      }
      expect(slowClosedByServer()).toBe(true);
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      expect((await slow.closed).code).toBe(1013);
      expect(fast.ws.readyState).toBe(fast.ws.OPEN);
      // The fast reader still gets everything sent after the slow one was cut off.
      a.send({ receiver: bob.username, content: 'after', clientId: 'after' });
      expect(await fast.next((f) => f.type === 'message')).toMatchObject({ content: 'after' });
      fast.close();
      a.close();
    } finally {
      await server.close();
    }
  }, 60_000);
});
