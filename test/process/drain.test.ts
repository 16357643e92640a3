// Graceful drain on SIGTERM, over the real src/main.ts in a child process: during
// SHUTDOWN_DRAIN_MS /readyz answers 503 while HTTP requests and open WebSockets are still served
// (new handshakes are refused); a second SIGTERM skips the rest of the drain; then the WebSockets
// are closed with 1001 in batches over SHUTDOWN_CLOSE_SPREAD_MS, and the process exits 0.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account, connect, request, type Account, type Client } from '../helpers/server.js';
import { freePort, killAll, ServerProcess, until } from '../faults/process.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-drain-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  killAll();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Long enough never to end by itself in these tests: a second SIGTERM ends it. */
const DRAIN_MS = 120_000;
const CONNECTIONS = 20;

interface Closed {
  code: number;
  reason: string;
  /** How many sockets had received their close before this one (its place in the close order). */
  order: number;
}

/** Sends one message over `c` and resolves with the ack (rejects on an error frame or timeout). */
async function sendAndAck(c: Client, receiver: string, clientId: string): Promise<any> {
  c.send({ type: 'message', receiver, content: `hello ${clientId}`, clientId });
  return c.next((f) => f.clientId === clientId && (f.type === 'ack' || f.type === 'error'), 10_000);
}

async function withSockets(server: ServerProcess, accounts: Account[]) {
  const sockets = await Promise.all(accounts.map((a) => connect(server, { token: a.token })));
  let closedSoFar = 0;
  const closes: Array<Promise<Closed>> = sockets.map((s) =>
    s.closed.then(({ code, reason }) => ({ code, reason, order: closedSoFar++ })),
  );
  return { sockets, closes, closedCount: () => closedSoFar };
}

describe('SIGTERM with SHUTDOWN_DRAIN_MS and SHUTDOWN_CLOSE_SPREAD_MS', () => {
  it('drains (503 on /readyz, everything else served), then closes in batches and exits 0', async () => {
    const server = new ServerProcess('drain', await freePort(), {
      DATA_DIR: tempDir(),
      SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
      SHUTDOWN_CLOSE_SPREAD_MS: '3000',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    await server.start();
    const accounts: Account[] = [];
    for (let i = 0; i < CONNECTIONS; i++) accounts.push(await account(server));
    const { sockets, closes, closedCount } = await withSockets(server, accounts);
    expect((await server.readyz()).status).toBe(200);

    server.signal('SIGTERM');
    await server.waitReady(503);
    expect((await server.readyz()).body).toMatchObject({ checks: { server: 'shutting down' } });

    // Still serving during the drain: an authenticated GET, a message over an open WebSocket
    // (acked, and delivered live to its receiver), and no socket closed.
    const me = await request(server, 'GET', '/users/me', { token: accounts[0]!.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: accounts[0]!.username });
    const ack = await sendAndAck(sockets[0]!, accounts[1]!.username, 'during-drain');
    expect(ack).toMatchObject({ type: 'ack' });
    await sockets[1]!.next((f) => f.type === 'message' && f.id === ack.id);
    // A new handshake is refused: the load balancer is moving traffic away.
    await expect(connect(server, { token: accounts[2]!.token })).rejects.toMatchObject({
      status: 503,
    });
    expect(closedCount()).toBe(0);
    expect(server.running).toBe(true);

    // A second SIGTERM ends the drain: the shutdown starts, with its batches of closes.
    server.signal('SIGTERM');
    await until(() => closedCount() > 0, 'the first batch of closes', 20_000);
    // Spread out: after the first batch, the sockets not yet closed are still served.
    const stillOpen = sockets
      .map((s, i) => ({ s, i }))
      .filter(({ s }) => s.ws.readyState === s.ws.OPEN);
    expect(stillOpen.length).toBeGreaterThanOrEqual(2);
    const acked: number[] = [];
    await Promise.all(
      stillOpen.map(async ({ s, i }) => {
        try {
          const f = await sendAndAck(s, accounts[(i + 1) % CONNECTIONS]!.username, `spread-${i}`);
          if (f.type === 'ack') acked.push(i);
        } catch {
          // closed by a later batch before its ack came: counted as not acked
        }
      }),
    );
    // At least one socket was served after the first batch was closed, and closed later.
    expect(acked.length).toBeGreaterThanOrEqual(1);

    const all = await Promise.all(closes);
    for (const c of all) expect(c).toMatchObject({ code: 1001, reason: 'server_shutdown' });
    const firstBatch = CONNECTIONS - stillOpen.length;
    for (const i of acked) expect(all[i]!.order).toBeGreaterThanOrEqual(firstBatch);
    expect(await server.exited()).toEqual({ code: 0, signal: null });

    const batches = server.logLines().find((l) => l.msg === 'closing websockets in batches');
    expect(batches).toMatchObject({ connections: CONNECTIONS, batches: 10, spreadMs: 3000 });
    expect(server.log).toContain('SIGTERM again: skipping the rest of the drain');
  });

  it('a signal after the drain closes the remaining sockets at once', async () => {
    const server = new ServerProcess('hurry', await freePort(), {
      DATA_DIR: tempDir(),
      SHUTDOWN_DRAIN_MS: '0',
      // Far longer than the test: only the second signal can end the spread in time.
      SHUTDOWN_CLOSE_SPREAD_MS: '500000',
      SHUTDOWN_TIMEOUT_MS: '600000',
    });
    await server.start();
    const accounts: Account[] = [];
    for (let i = 0; i < 4; i++) accounts.push(await account(server));
    const { closes, closedCount } = await withSockets(server, accounts);

    server.signal('SIGTERM');
    await until(() => closedCount() > 0, 'the first batch of closes', 20_000);
    expect(closedCount()).toBeLessThan(accounts.length);
    server.signal('SIGINT');
    const all = await Promise.all(closes);
    for (const c of all) expect(c).toMatchObject({ code: 1001, reason: 'server_shutdown' });
    expect(await server.exited()).toEqual({ code: 0, signal: null });
    expect(server.log).toContain('SIGINT again: closing the remaining WebSockets at once');
  });

  it('with the defaults (no drain, no spread) shuts down at once as before', async () => {
    const server = new ServerProcess('defaults', await freePort(), { DATA_DIR: tempDir() });
    await server.start();
    const accounts = [await account(server), await account(server)];
    const { closes } = await withSockets(server, accounts);
    server.signal('SIGTERM');
    const all = await Promise.all(closes);
    for (const c of all) expect(c).toMatchObject({ code: 1001, reason: 'server_shutdown' });
    expect(await server.exited()).toEqual({ code: 0, signal: null });
    expect(server.log).not.toContain('draining for');
    expect(server.log).not.toContain('closing websockets in batches');
  });
});
