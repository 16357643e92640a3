// SIGSTOP for a few seconds, then SIGCONT: a process paused by the kernel, a VM or a debugger.
// Clients keep sending into the paused server's sockets. Afterwards nothing is acked that was not
// committed (a SIGKILL and restart show what is durable), and a session revoked meanwhile is not
// honoured: on one SQLite node with a session revoked just before the stop and one revoked
// directly in the database during it; on two nodes (PostgreSQL + Redis) with a session revoked
// through the other node while this one is stopped.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account, connect, request, type Account } from '../helpers/server.js';
import { serviceUrl } from '../helpers/services.js';
import { check, figuresLine } from './checker.js';
import { FaultClient, load, readStored, type Target } from './client.js';
import { freePort, killAll, ServerProcess, sleep, until } from './process.js';
import { Recorder } from './recorder.js';
import { freshDatabase, haveRedis, startRedis } from './services.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-stop-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  killAll();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const STOP_MS = 3_000;

async function sessionId(target: Target, a: Account): Promise<string> {
  const res = await request(target, 'GET', '/sessions', { token: a.token });
  return res.body.sessions.find((s: { current: boolean }) => s.current).id;
}

/** What a revoked session gets afterwards: 401 over HTTP and a refused handshake. */
async function refused(target: Target, a: Account): Promise<void> {
  expect((await request(target, 'GET', '/users/me', { token: a.token })).status).toBe(401);
  await expect(connect(target, { token: a.token })).rejects.toMatchObject({ status: 401 });
}

/** Settles every client, syncs it over HTTP and checks the history against what is stored. */
async function judge(
  recorder: Recorder,
  clients: FaultClient[],
  read: Target,
  accounts: Account[],
  ordered = true,
) {
  const settled = await Promise.all(clients.map((c) => c.settle(20_000)));
  expect(settled.every(Boolean), 'every client settles').toBe(true);
  for (const c of clients) await c.syncHttp();
  for (const c of clients) c.stop();
  return check(recorder.finish(), await readStored(read, accounts), {
    receivers: clients.map((c) => c.name),
    ordered,
  });
}

describe('SIGSTOP then SIGCONT', () => {
  it('on SQLite: acks only what is committed; revoked sessions stay refused', async () => {
    const dir = tempDir();
    const server = new ServerProcess('stopped', await freePort(), { DATA_DIR: dir });
    await server.start();
    const recorder = new Recorder({ internalErrorIsDefinite: true });
    const accounts: Account[] = [];
    for (let i = 0; i < 5; i++) accounts.push(await account(server));
    const clients = accounts.map((a) => new FaultClient(a, () => server, recorder));
    await Promise.all(clients.map((c) => c.start()));
    const senders = clients.slice(0, 3);
    const to = clients.slice(3).map((c) => c.name);
    const before = await account(server); // revoked just before the stop
    const during = await account(server); // revoked in the database while stopped
    const beforeSocket = await connect(server, { token: before.token });
    const duringSession = await sessionId(server, during);

    let sending = true;
    const warmUp = load(senders, to, 100_000, { perTick: 3, tickMs: 10, until: () => !sending });
    await sleep(500);
    expect(
      (
        await request(server, 'DELETE', `/sessions/${await sessionId(server, before)}`, {
          token: before.token,
        })
      ).status,
    ).toBe(204);
    expect(await beforeSocket.closed).toEqual({ code: 4001, reason: 'session_revoked' });

    // Stop the server between two commits, so that it holds no lock and the database can take
    // the revocation meanwhile (one writer at a time: a server stopped in a transaction would
    // keep every other writer out until it resumes). The load goes on throughout the stop.
    sending = false;
    await warmUp;
    await until(() => recorder.sends.every((a) => a.outcome !== undefined), 'in-flight acks');
    sending = true;
    server.signal('SIGSTOP');
    const traffic = load(senders, to, 100_000, { perTick: 3, tickMs: 10, until: () => !sending });
    const stoppedAt = performance.now();
    const stopT = recorder.now();
    const db = new Database(path.join(dir, 'chat.db'));
    db.pragma('busy_timeout = 1000');
    db.prepare('UPDATE sessions SET revoked_at = ? WHERE id = ?').run(
      new Date().toISOString(),
      duringSession,
    );
    db.close();
    // Requests with both revoked sessions wait in the paused server's socket backlog.
    const whileStopped = [before, during].map((a) =>
      request(server, 'GET', '/users/me', { token: a.token }),
    );
    await sleep(STOP_MS - (performance.now() - stoppedAt));
    const resumeT = recorder.now();
    server.signal('SIGCONT');
    const invokedWhileStopped = recorder.sends.filter(
      (a) => a.invokedAt >= stopT && a.invokedAt < resumeT,
    ).length;
    // Acks the server wrote just before the stop may still be read after it; none later.
    const acksWhileStopped = recorder.sends.filter(
      (a) => a.outcome === 'ok' && a.completedAt! >= stopT + 250 && a.completedAt! < resumeT,
    ).length;
    expect(acksWhileStopped).toBe(0);
    for (const res of await Promise.all(whileStopped)) expect(res.status).toBe(401);
    await refused(server, before);
    await refused(server, during);

    await sleep(500);
    sending = false;
    await traffic;
    const settled = await Promise.all(clients.map((c) => c.settle(20_000)));
    expect(settled.every(Boolean)).toBe(true);
    // What is durable: kill and restart, then compare.
    await server.kill();
    await server.start();
    await Promise.all(clients.map((c) => until(() => c.synced, `${c.name} to reconnect`)));
    const result = await judge(recorder, clients, server, accounts);
    console.log(
      figuresLine('SIGSTOP 3 s (SQLite)', result.figures, {
        acksWhileStopped,
        sentWhileStopped: invokedWhileStopped,
      }),
    );
    expect(result.violations).toEqual([]);
    await server.stop();
  }, 60_000);

  const databaseUrl = serviceUrl('DATABASE_URL', 'postgres:');
  it.skipIf(!databaseUrl || !haveRedis())(
    'on two nodes: a session revoked through the other node is closed when this one resumes',
    async () => {
      // A database of its own on the shared PostgreSQL server, a Redis server of its own.
      const db = await freshDatabase(databaseUrl!);
      const redis = await startRedis();
      const env = {
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        JWT_SECRET: 'fault-test-secret-that-is-at-least-32-characters',
      };
      const a = new ServerProcess('a', await freePort(), { ...env, DATA_DIR: tempDir() });
      const b = new ServerProcess('b', await freePort(), { ...env, DATA_DIR: tempDir() });
      await Promise.all([a.start(), b.start()]);
      const recorder = new Recorder();
      const accounts: Account[] = [];
      for (let i = 0; i < 6; i++) accounts.push(await account(a));
      // Senders and receivers on both nodes; the stopped node's receivers get the other node's
      // messages from Redis once it resumes (its subscriber connection stays open meanwhile).
      const clients = accounts.map(
        (acc, i) => new FaultClient(acc, () => (i % 2 ? b : a), recorder, { resume: 'synced' }),
      );
      await Promise.all(clients.map((c) => c.start()));
      const senders = clients.slice(0, 4);
      const to = clients.slice(4).map((c) => c.name);
      const victim = await account(a);
      const socket = await connect(a, { token: victim.token });
      const victimSession = await sessionId(a, victim);

      let sending = true;
      const traffic = load(senders, to, 100_000, { perTick: 3, tickMs: 10, until: () => !sending });
      await sleep(500);
      a.signal('SIGSTOP');
      const stoppedAt = performance.now();
      const res = await request(b, 'DELETE', `/sessions/${victimSession}`, {
        token: victim.token,
      });
      expect(res.status).toBe(204);
      expect((await b.readyz()).status).toBe(200);
      await sleep(STOP_MS - (performance.now() - stoppedAt));
      a.signal('SIGCONT');
      const resumedAt = performance.now();
      expect(await socket.closed).toEqual({ code: 4001, reason: 'session_revoked' });
      const closedAfterMs = Math.round(performance.now() - resumedAt);
      await refused(a, victim);

      await sleep(500);
      sending = false;
      await traffic;
      const result = await judge(recorder, clients, b, accounts, false);
      console.log(
        figuresLine('SIGSTOP 3 s (two nodes, PostgreSQL + Redis)', result.figures, {
          revokedSocketClosedAfterResumeMs: closedAfterMs,
        }),
      );
      expect(result.violations).toEqual([]);
      await Promise.all([a.stop(), b.stop()]);
      await redis.destroy();
      await db.drop();
    },
    60_000,
  );
});
