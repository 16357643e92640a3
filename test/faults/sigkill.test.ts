// SIGKILL: the server process dies at once, no shutdown code runs. An acked message was committed
// durably before its ack, so it must be there after a restart, exactly once; clients that
// reconnect, sync and resend their unacked messages (same clientId) end up with every message.
// Two moments: in the middle of a burst from several clients (on SQLite, and on PostgreSQL +
// Redis when those are available), and in the middle of a WAL checkpoint (SQLite).
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account, type Account } from '../helpers/server.js';
import { serviceUrl } from '../helpers/services.js';
import { check, figuresLine } from './checker.js';
import { FaultClient, load, readStored } from './client.js';
import { freePort, killAll, ServerProcess, until } from './process.js';
import { freshDatabase, haveRedis, startRedis } from './services.js';
import { Recorder } from './recorder.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-kill-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  killAll();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A backend: the settings of a deployment, and how to tear it down. */
type Backend = () => Promise<{ env: Record<string, string>; done(): Promise<void> }>;
const backends: Array<[string, Backend]> = [
  ['SQLite', async () => ({ env: {}, done: async () => {} })],
];
const databaseUrl = serviceUrl('DATABASE_URL', 'postgres:');
if (databaseUrl && haveRedis()) {
  // A database of its own on the shared PostgreSQL server, a Redis server of its own.
  backends.push([
    'PostgreSQL + Redis',
    async () => {
      const db = await freshDatabase(databaseUrl);
      const redis = await startRedis();
      return {
        env: {
          DATABASE_URL: db.url,
          REDIS_URL: redis.url,
          JWT_SECRET: 'fault-test-secret-that-is-at-least-32-characters',
        },
        done: async () => {
          await redis.destroy();
          await db.drop();
        },
      };
    },
  ]);
}

/** Users and their clients: `senders` send to `receivers`; every client records into `recorder`. */
async function population(
  server: ServerProcess,
  recorder: Recorder,
  senders: number,
  receivers: number,
) {
  const accounts: Account[] = [];
  for (let i = 0; i < senders + receivers; i++) accounts.push(await account(server));
  const clients = accounts.map((a) => new FaultClient(a, () => server, recorder));
  await Promise.all(clients.map((c) => c.start()));
  return {
    accounts,
    clients,
    senders: clients.slice(0, senders),
    receivers: clients.slice(senders),
  };
}

/** Each client settles (every message acked or refused) and catches up with GET /sync. */
async function finish(clients: FaultClient[]): Promise<void> {
  const settled = await Promise.all(clients.map((c) => c.settle(20_000)));
  expect(settled.every(Boolean), 'every client settles').toBe(true);
  for (const c of clients) await c.syncHttp();
  for (const c of clients) c.stop();
}

describe.each(backends)('SIGKILL on %s', (name, backend) => {
  it('during a burst from several clients: every acked message is kept, exactly once', async () => {
    const deployment = await backend();
    const server = new ServerProcess('burst', await freePort(), {
      DATA_DIR: tempDir(),
      ...deployment.env,
    });
    await server.start();
    const recorder = new Recorder({ internalErrorIsDefinite: name === 'SQLite' });
    const { accounts, clients, senders, receivers } = await population(server, recorder, 4, 2);

    // Kill the moment the 600th ack arrives: later frames may or may not have been stored.
    let acks = 0;
    recorder.onComplete = (a) => {
      if (a.outcome === 'ok' && ++acks === 600) server.signal('SIGKILL');
    };
    // 400 messages from each of 4 senders, 5 each every 10 ms: the kill lands mid-burst even
    // where one commit could take them all at once.
    const sending = load(
      senders,
      receivers.map((r) => r.name),
      400,
      { perTick: 5, tickMs: 10 },
    );
    const exit = await server.exited();
    await sending;
    recorder.onComplete = undefined;
    expect(exit.signal).toBe('SIGKILL');
    expect(acks).toBeGreaterThanOrEqual(600);
    for (const c of clients) c.stop();

    await server.start();
    // Tokens survive the restart: the key is in DATA_DIR (or JWT_SECRET). Before any resend:
    // what each sender got stored is a prefix of what it sent, in order (commit order = order
    // received), and contains everything acked (the checker below checks the ids).
    const afterCrash = await readStored(server, accounts);
    for (const s of senders) {
      const mine = afterCrash.filter((m) => m.sender === s.name);
      expect(mine.map((m) => Number(m.content.split(' ')[0]!.split('.')[1]))).toEqual(
        mine.map((_, i) => i),
      );
      const acked = recorder.sends.filter((a) => a.sender === s.name && a.outcome === 'ok');
      expect(mine.length).toBeGreaterThanOrEqual(acked.length);
    }
    const storedAtCrash = afterCrash.length;
    expect(storedAtCrash, 'the kill landed mid-burst').toBeLessThan(1600);

    // Clients come back as the protocol says: ?after=<cursor>, then resend unacked messages.
    await Promise.all(clients.map((c) => c.start()));
    await finish(clients);
    const result = check(recorder.finish(), await readStored(server, accounts), {
      receivers: clients.map((c) => c.name),
    });
    console.log(
      figuresLine(`SIGKILL mid-burst (${name})`, result.figures, {
        ackedBeforeKill: acks,
        storedAtCrash,
      }),
    );
    expect(result.violations).toEqual([]);
    expect(result.figures.acked).toBe(1600);

    await server.stop();
    expect((await server.exited()).code).toBe(0);
    await deployment.done();
  }, 90_000);
});

describe('SIGKILL during a WAL checkpoint (SQLite)', () => {
  it('recovers from the WAL: every acked message kept once, integrity_check ok', async () => {
    const dir = tempDir();
    const server = new ServerProcess('checkpoint', await freePort(), { DATA_DIR: dir });
    await server.start();
    const recorder = new Recorder({ internalErrorIsDefinite: true });
    const { accounts, clients, senders, receivers } = await population(server, recorder, 4, 2);
    const file = path.join(dir, 'chat.db');
    const to = receivers.map((r) => r.name);

    // A reader holding a snapshot keeps the checkpointer from copying anything, so a backlog of
    // several MB builds up in the WAL; once the reader lets go, the next checkpoint copies it all.
    const reader = new Database(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM messages').get();
    // Until the WAL holds 3 MB: how many messages that takes depends on how commits batch them.
    const wal = () => fs.statSync(`${file}-wal`).size;
    for (let round = 0; round < 20 && wal() < 3 * 2 ** 20; round++) {
      await load(senders, to, 200, { perTick: 50, tickMs: 10 });
      await Promise.all(senders.map((s) => s.settle(20_000)));
    }
    const walBytes = wal();
    const before = fs.statSync(file).size;
    expect(walBytes).toBeGreaterThan(3 * 2 ** 20);

    // Keep sending while the checkpoint runs, and kill the server as soon as the database file
    // starts growing: the checkpoint is then copying pages, and has not synced or reset the WAL.
    let sending = true;
    const trickle = load(senders, to, 10_000, { perTick: 2, tickMs: 2, until: () => !sending });
    reader.exec('COMMIT');
    reader.close();
    const deadline = Date.now() + 5_000;
    let size = before;
    while (size === before && Date.now() < deadline) {
      size = fs.statSync(file).size;
      await new Promise((resolve) => setImmediate(resolve));
    }
    server.signal('SIGKILL');
    sending = false;
    await server.exited();
    await trickle;
    expect(size, 'the checkpoint started before the deadline').toBeGreaterThan(before);
    const copiedAtKill = size - before;

    // The WAL is still whole: SQLite recovers from it at the next open.
    await server.start();
    await Promise.all(clients.map((c) => until(() => c.synced, `${c.name} to reconnect`, 15_000)));
    await finish(clients);
    const result = check(recorder.finish(), await readStored(server, accounts), {
      receivers: clients.map((c) => c.name),
    });
    await server.stop();
    const db = new Database(file, { readonly: true });
    const integrity = db.pragma('integrity_check', { simple: true });
    db.close();
    console.log(
      figuresLine('SIGKILL mid-checkpoint (SQLite)', result.figures, {
        walKiB: Math.round(walBytes / 1024),
        copiedKiBAtKill: Math.round(copiedAtKill / 1024),
        integrity,
      }),
    );
    expect(result.violations).toEqual([]);
    expect(integrity).toBe('ok');
  }, 90_000);
});
