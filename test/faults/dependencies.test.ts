// PostgreSQL and Redis restarted under load, each a dedicated server of this test (the shared ones
// are never stopped). While a dependency is down, /readyz says 503; afterwards no acked message is
// lost or duplicated (a send whose commit outcome a lost connection hides is retried with its
// clientId), and every receiver, reconnecting and syncing as clients do, has all of its stream.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account, type Account } from '../helpers/server.js';
import { check, compareIds, figuresLine } from './checker.js';
import { FaultClient, load, readStored } from './client.js';
import { freePort, killAll, ServerProcess, sleep } from './process.js';
import { Recorder } from './recorder.js';
import {
  havePostgres,
  haveRedis,
  startPostgres,
  startRedis,
  type Postgres,
  type RedisServer,
} from './services.js';

const withPostgres = havePostgres();
const withRedis = withPostgres && haveRedis();
let postgres: Postgres | undefined;
let redis: RedisServer | undefined;
const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-deps-'));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  if (withPostgres) postgres = await startPostgres();
  if (withRedis) redis = await startRedis();
}, 60_000);

afterAll(async () => {
  killAll();
  await redis?.destroy();
  await postgres?.destroy();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
}, 30_000);

const JWT_SECRET = 'fault-test-secret-that-is-at-least-32-characters';
const DOWN_MS = 1_500;

/** `user#id` of every message delivered live so far. */
const liveDeliveries = (recorder: Recorder) =>
  new Set(
    recorder.deliveries.filter((d) => d.via === 'live').map((d) => `${d.user}#${d.message.id}`),
  );

/** Settles the clients, has every one reconnect (and so sync), then sync over HTTP; the check. */
async function judge(
  recorder: Recorder,
  clients: FaultClient[],
  read: ServerProcess,
  accounts: Account[],
  ordered: boolean,
) {
  const settled = await Promise.all(clients.map((c) => c.settle(30_000)));
  expect(settled.every(Boolean), 'every client settles').toBe(true);
  await Promise.all(clients.map((c) => c.reconnect()));
  for (const c of clients) await c.syncHttp();
  for (const c of clients) c.stop();
  return check(recorder.finish(), await readStored(read, accounts), {
    receivers: clients.map((c) => c.name),
    ordered,
  });
}

describe('dependencies restarted under load', () => {
  it.skipIf(!withPostgres)(
    'PostgreSQL: sends fail meanwhile, /readyz 503, nothing acked lost or duplicated',
    async () => {
      const node = new ServerProcess('pg', await freePort(), {
        DATABASE_URL: postgres!.url(),
        DATA_DIR: tempDir(),
      });
      await node.start();
      const recorder = new Recorder();
      const accounts: Account[] = [];
      for (let i = 0; i < 5; i++) accounts.push(await account(node));
      // Clients resume from their last `synced.lastId` (protocol.md, Under faults): a message
      // whose commit succeeded while its connection broke gets internal_error, then the original
      // ack on retry, and is never delivered live; receivers meanwhile got newer ones live.
      const clients = accounts.map(
        (a) => new FaultClient(a, () => node, recorder, { maxBackoffMs: 500, resume: 'synced' }),
      );
      await Promise.all(clients.map((c) => c.start()));
      const senders = clients.slice(0, 3);
      const to = clients.slice(3).map((c) => c.name);

      let sending = true;
      const traffic = load(senders, to, 100_000, { perTick: 3, tickMs: 10, until: () => !sending });
      await sleep(500);
      // An immediate shutdown, as in a crash: connections cut, recovery at the next start.
      await postgres!.crash();
      const downAt = performance.now();
      const notReadyAfterMs = await node.waitReady(503, 10_000);
      await sleep(DOWN_MS);
      await postgres!.start();
      const upAt = performance.now();
      const readyAfterMs = await node.waitReady(200, 20_000);
      await sleep(500);
      sending = false;
      await traffic;
      const gotLive = liveDeliveries(recorder);
      const result = await judge(recorder, clients, node, accounts, false);
      const notLive = (await readStored(node, accounts)).filter(
        (m) => to.includes(m.receiver) && !gotLive.has(`${m.receiver}#${m.id}`),
      ).length;
      console.log(
        figuresLine('PostgreSQL restarted (one node)', result.figures, {
          receivedOnlyBySync: notLive,
          downMs: Math.round(upAt - downAt),
          readyz503AfterMs: notReadyAfterMs,
          readyz200AfterRestartMs: readyAfterMs,
          internalErrors: recorder.sends.filter((a) => a.error === 'internal_error').length,
        }),
      );
      expect(result.violations).toEqual([]);
      await node.stop();
    },
    90_000,
  );

  it.skipIf(!withRedis)(
    'Redis, two nodes: /readyz 503 meanwhile; receivers catch up by syncing after reconnecting',
    async () => {
      const env = {
        DATABASE_URL: await postgres!.createDatabase('chat_redis'),
        REDIS_URL: redis!.url,
        JWT_SECRET,
      };
      const a = new ServerProcess('a', await freePort(), { ...env, DATA_DIR: tempDir() });
      const b = new ServerProcess('b', await freePort(), { ...env, DATA_DIR: tempDir() });
      await Promise.all([a.start(), b.start()]);
      const recorder = new Recorder();
      const accounts: Account[] = [];
      for (let i = 0; i < 6; i++) accounts.push(await account(a));
      // Senders and receivers on both nodes. Clients resume from their last `synced.lastId`, the
      // rule for several nodes (protocol.md, Under faults): a receiver on B gets B's messages live
      // during the outage, with ids above those of A's that never reach it.
      const clients = accounts.map(
        (acc, i) =>
          new FaultClient(acc, () => (i % 2 ? b : a), recorder, {
            maxBackoffMs: 500,
            resume: 'synced',
          }),
      );
      await Promise.all(clients.map((c) => c.start()));
      const senders = clients.slice(0, 4);
      const to = clients.slice(4).map((c) => c.name);

      let sending = true;
      const traffic = load(senders, to, 100_000, { perTick: 3, tickMs: 10, until: () => !sending });
      await sleep(500);
      await redis!.stop();
      const downAt = performance.now();
      const notReadyAfterMs = Math.max(
        ...(await Promise.all([a, b].map((n) => n.waitReady(503, 10_000)))),
      );
      await sleep(DOWN_MS);
      await redis!.start();
      const upAt = performance.now();
      const readyAfterMs = Math.max(
        ...(await Promise.all([a, b].map((n) => n.waitReady(200, 20_000)))),
      );
      await sleep(500);
      sending = false;
      await traffic;
      // Before the receivers reconnect: what they got live, and the greatest id each got.
      const gotLive = liveDeliveries(recorder);
      const greatest = new Map(clients.map((c) => [c.name, c.cursor]));
      const result = await judge(recorder, clients, b, accounts, false);
      const stored = await readStored(b, accounts);
      const missedLive = stored.filter(
        (m) => to.includes(m.receiver) && !gotLive.has(`${m.receiver}#${m.id}`),
      );
      // What resuming from the greatest id received (the one-node rule) would never have fetched.
      const skippedByGreatestId = missedLive.filter(
        (m) => compareIds(m.id, greatest.get(m.receiver)!) < 0,
      ).length;
      console.log(
        figuresLine('Redis restarted (two nodes, PostgreSQL)', result.figures, {
          downMs: Math.round(upAt - downAt),
          readyz503AfterMs: notReadyAfterMs,
          readyz200AfterRestartMs: readyAfterMs,
          missedLiveThenSynced: missedLive.length,
          wouldSkipResumingFromGreatestId: skippedByGreatestId,
        }),
      );
      expect(result.violations).toEqual([]);
      await Promise.all([a.stop(), b.stop()]);
    },
    90_000,
  );
});
