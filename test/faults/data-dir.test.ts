// The data directory deleted, or replaced by a restored copy, under a running server. SQLite
// keeps writing into the files it has open, which are no longer the ones at the path: whatever it
// acked from then on would be gone at the next start. The server must notice (the database file
// at its path is not the open one), stop acking (error frames instead), say so in /readyz (503)
// and in its log, and refuse the writes of HTTP requests (503) while reads go on.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account, PASSWORD, request, type Account } from '../helpers/server.js';
import { check } from './checker.js';
import { FaultClient, load, readStored } from './client.js';
import { freePort, killAll, ServerProcess, sleep } from './process.js';
import { Recorder, type SendAttempt } from './recorder.js';

const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-dir-'));

afterAll(() => {
  killAll();
  fs.rmSync(parent, { recursive: true, force: true });
});

/**
 * Clients send under load while `fault` is done to the data directory; checks what the server
 * did about it, prints the figures, and returns the history with the time of the fault.
 */
async function scenario(
  name: string,
  fault: (dataDir: string, recorder: Recorder) => Promise<void>,
) {
  const dataDir = path.join(parent, name, 'data');
  const server = new ServerProcess(name, await freePort(), { DATA_DIR: dataDir });
  await server.start();
  const recorder = new Recorder({ internalErrorIsDefinite: true });
  const accounts: Account[] = [];
  for (let i = 0; i < 5; i++) accounts.push(await account(server));
  const clients = accounts.map(
    (a) => new FaultClient(a, () => server, recorder, { maxBackoffMs: 300 }),
  );
  await Promise.all(clients.map((c) => c.start()));
  const senders = clients.slice(0, 3);
  const to = clients.slice(3).map((c) => c.name);

  let sending = true;
  const traffic = load(senders, to, 100_000, { perTick: 3, tickMs: 10, until: () => !sending });
  await sleep(500);
  await fault(dataDir, recorder);
  const faultAt = recorder.now();
  const detectedAfterMs = await server.waitReady(503, 5_000);
  const ready = await server.readyz();
  await sleep(500);
  // HTTP while the storage is gone: writes refused with 503, reads answered.
  const register = await request(server, 'POST', '/register', {
    body: { username: `late${Date.now() % 1e6}`, password: PASSWORD },
  });
  const read = await request(server, 'GET', '/users/me', { token: accounts[0]!.token });
  sending = false;
  await traffic;
  for (const c of clients) c.stop();
  const history = recorder.finish();
  const acked = (a: SendAttempt) => a.outcome === 'ok';
  const acksAfter = history.sends.filter((a) => acked(a) && a.invokedAt > faultAt);
  const errorsAfter = history.sends.filter((a) => a.error === 'internal_error');
  const log = server.logLines();
  expect(acksAfter).toEqual([]);
  expect(errorsAfter.length).toBeGreaterThan(0);
  expect(ready.status).toBe(503);
  expect(ready.body.checks.storage).toBe('failing');
  expect(
    log.some(
      (l) => l.level === 50 && /storage: the database file .* was (deleted|replaced)/.test(l.msg),
    ),
  ).toBe(true);
  expect(register.status).toBe(503);
  expect(register.body.error.code).toBe('unavailable');
  expect(read.status).toBe(200);
  const figures = {
    sent: new Set(history.sends.map((a) => `${a.sender}/${a.clientId}`)).size,
    acked: new Set(history.sends.filter(acked).map((a) => `${a.sender}/${a.clientId}`)).size,
    acksAfterFault: acksAfter.length,
    errorFramesAfterFault: errorsAfter.length,
    detectedAfterMs,
  };
  return { server, accounts, history, faultAt, figures };
}

const line = (name: string, figures: Record<string, unknown>) =>
  `[fault] data directory ${name} (SQLite): ${Object.entries(figures)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;

describe('the data directory under a running server', () => {
  it('deleted: no ack from then on, /readyz 503, logged', async () => {
    const { server, figures } = await scenario('deleted', async (dataDir) => {
      fs.rmSync(dataDir, { recursive: true, force: true });
    });
    // What was acked before went with the directory: an operator's loss, not the server's.
    console.log(line('deleted', figures));
    await server.stop();
  }, 60_000);

  it('replaced by a restored copy: no ack from then on; the copy holds all acked before it', async () => {
    let copiedAt = 0;
    const { server, accounts, history, faultAt, figures } = await scenario(
      'replaced',
      async (dataDir, recorder) => {
        // A consistent copy (SQLite's online backup), as an operator restoring a backup would
        // put in place, moved over the live directory while the server runs.
        const copy = `${dataDir}.restored`;
        fs.mkdirSync(copy, { mode: 0o700 });
        const live = new Database(path.join(dataDir, 'chat.db'), { readonly: true });
        copiedAt = recorder.now();
        await live.backup(path.join(copy, 'chat.db'));
        live.close();
        fs.copyFileSync(path.join(dataDir, 'jwt-secret'), path.join(copy, 'jwt-secret'));
        fs.renameSync(dataDir, `${dataDir}.old`);
        fs.renameSync(copy, dataDir);
      },
    );
    await server.stop();
    // Restarted on the copy: every message acked before the copy began is there once, nothing
    // sent after the swap is. Sends between the two are lost by restoring an older copy: the
    // check counts them as unknown.
    await server.start();
    expect((await server.readyz()).status).toBe(200);
    for (const a of history.sends)
      if (a.invokedAt >= copiedAt - 1 && a.invokedAt <= faultAt) a.outcome = 'info';
      else if (a.outcome === 'ok' && a.completedAt! >= copiedAt) a.outcome = 'info';
    const result = check(history, await readStored(server, accounts));
    console.log(
      line('replaced', {
        ...figures,
        lost: result.figures.lost,
        duplicated: result.figures.duplicated,
        inWindow: result.figures.unknown,
      }),
    );
    expect(result.violations).toEqual([]);
    // And it takes writes again.
    const client = new FaultClient(accounts[0]!, () => server, new Recorder());
    await client.start();
    client.send(accounts[1]!.username);
    expect(await client.settle()).toBe(true);
    expect(client.recorder.sends[0]?.outcome).toBe('ok');
    client.stop();
    await server.stop();
  }, 60_000);
});
