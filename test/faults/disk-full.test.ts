// A full disk. The server runs with SQLite's max_page_count set (TEST_SQLITE_MAX_PAGE_COUNT, read
// only under NODE_ENV=test): a write that needs a page beyond it fails with SQLITE_FULL, as on a
// disk with no space left. The test fills the database from its own connection (a table of its
// own) to just under the limit, and the server's own sends take the rest. Then:
// - sends get error frames (and every ack, for the odd batch that still fits, is durable);
// - reads and logins do not fail because a bookkeeping write (a session's lastUsedAt) fails:
//   reads answer 200, a login answers 200 or, if its session cannot be stored, 503;
// - /readyz says 503 while writes fail, and the log says why;
// - once space is back (the test deletes its table), writes recover without a restart: /readyz
//   200 again, the clients' retries are acked, logins work; integrity_check says ok.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account, PASSWORD, request, type Account } from '../helpers/server.js';
import { check, figuresLine } from './checker.js';
import { FaultClient, load, readStored } from './client.js';
import { freePort, killAll, ServerProcess, sleep, until } from './process.js';
import { Recorder } from './recorder.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-full-'));
const MAX_PAGES = 1024;

afterAll(() => {
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A login with the longest User-Agent kept (256 characters): a session row of about 350 bytes. */
const login = (server: ServerProcess, username: string) =>
  request(server, 'POST', '/login', {
    body: { username, password: PASSWORD },
    headers: { 'user-agent': `fault-test ${'x'.repeat(245)}` },
  });

describe('a full disk (SQLite max_page_count)', () => {
  it('fails sends with error frames, never reads or logins; recovers without a restart', async () => {
    const server = new ServerProcess('full', await freePort(), {
      DATA_DIR: dir,
      TEST_SQLITE_MAX_PAGE_COUNT: String(MAX_PAGES),
    });
    await server.start();
    const recorder = new Recorder({ internalErrorIsDefinite: true });
    const accounts: Account[] = [];
    for (let i = 0; i < 5; i++) accounts.push(await account(server));
    const clients = accounts.map(
      (a) => new FaultClient(a, () => server, recorder, { maxBackoffMs: 400 }),
    );
    await Promise.all(clients.map((c) => c.start()));
    const senders = clients.slice(0, 3);
    const to = clients.slice(3).map((c) => c.name);
    // Sessions never used yet: the first request with each records lastUsedAt, a write that
    // grows its row; in a page without room for that, the page must split, which needs a new
    // page. With rows this large, pages have little room left.
    const idle = accounts[4]!;
    // One after another: parallel attempts on one account count against its login throttle
    // until each is decided (docs/security.md).
    const sessions: string[] = [];
    for (let i = 0; i < 40; i++) sessions.push((await login(server, idle.username)).body.token);

    // Fill the database to a few pages under the limit from the test's own connection.
    const file = path.join(dir, 'chat.db');
    const db = new Database(file);
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE filler (b BLOB)');
    const insert = db.prepare('INSERT INTO filler VALUES (zeroblob(1000))');
    db.transaction(() => {
      while ((db.pragma('page_count', { simple: true }) as number) < MAX_PAGES - 4) insert.run();
    })();

    // Sends until they fail; the few pages left go first.
    let sending = true;
    const traffic = load(senders, to, 100_000, { perTick: 2, tickMs: 20, until: () => !sending });
    await until(() => recorder.sends.some((a) => a.error === 'internal_error'), 'a failed send');
    const fullAt = recorder.now();
    await sleep(1_000);

    // Reads: every idle session is due a lastUsedAt update, which often cannot be written.
    const reads = await Promise.all(
      sessions.map((token, i) =>
        request(
          server,
          'GET',
          i % 3 === 0 ? '/sync?after=0' : i % 3 === 1 ? `/messages?with=${to[0]}` : '/users/me',
          { token },
        ),
      ),
    );
    const readStatuses = reads.map((r) => r.status);
    const logins = await Promise.all([0, 1, 2].map(() => login(server, idle.username)));
    const loginStatuses = logins.map((r) => r.status);
    const readyWhileFull = await server.readyz();
    const acksWhileFull = recorder.sends.filter(
      (a) => a.outcome === 'ok' && a.completedAt! > fullAt + 500,
    ).length;
    const errorsWhileFull = recorder.sends.filter(
      (a) => a.error === 'internal_error' && a.completedAt! > fullAt,
    ).length;

    // Space is back: the test's table goes, its pages are free for the server's writes.
    db.exec('DROP TABLE filler');
    const freedAt = recorder.now();
    const readyAfterMs = await server.waitReady(200, 10_000);
    await sleep(500);
    sending = false;
    await traffic;
    const settled = await Promise.all(clients.map((c) => c.settle(20_000)));
    expect(settled.every(Boolean), 'every send acked once space is back').toBe(true);
    const firstAckAfter = Math.min(
      ...recorder.sends
        .filter((a) => a.outcome === 'ok' && a.invokedAt > freedAt)
        .map((a) => a.completedAt! - freedAt),
    );
    const loginAfter = (await login(server, idle.username)).status;
    for (const c of clients) await c.syncHttp();
    for (const c of clients) c.stop();

    // What is stored against what was acked (durability after a crash is the SIGKILL
    // scenarios'), then the database's own check.
    const result = check(recorder.finish(), await readStored(server, accounts), {
      receivers: clients.map((c) => c.name),
    });
    await server.stop();
    const integrity = db.pragma('integrity_check', { simple: true });
    db.close();
    const log = server.logLines();
    console.log(
      figuresLine('disk full (SQLite max_page_count)', result.figures, {
        errorsWhileFull,
        acksWhileFull,
        reads: readStatuses.length,
        readsNot200: readStatuses.filter((s) => s !== 200).length,
        logins: loginStatuses.join('/'),
        readyz: `${readyWhileFull.status}→200 in ${readyAfterMs}ms`,
        firstAckAfterSpaceMs: Math.round(firstAckAfter),
        integrity,
      }),
    );
    expect(result.violations).toEqual([]);
    // Sends fail with error frames; the odd batch that still fits in the free space left inside
    // existing pages is stored and acked, rightly (the checker found every ack durable).
    expect(errorsWhileFull).toBeGreaterThan(0);
    expect(readStatuses.every((s) => s === 200)).toBe(true);
    for (const status of loginStatuses) expect([200, 503]).toContain(status);
    for (const r of logins.filter((l) => l.status === 503))
      expect(r.body.error.code).toBe('unavailable');
    expect(readyWhileFull.status).toBe(503);
    expect(readyWhileFull.body.checks.storage).toBe('failing');
    expect(loginAfter).toBe(200);
    expect(integrity).toBe('ok');
    expect(log.some((l) => /storage: writes fail/.test(l.msg))).toBe(true);
    expect(log.some((l) => /lastUsedAt update failed; skipped/.test(l.msg))).toBe(true);
    expect(log.some((l) => /storage: writes succeed again/.test(l.msg))).toBe(true);
  }, 60_000);
});
