// The pieces behind the disk-full and data-directory scenarios, each on its own and fast:
// SqliteStore turns a full database and a database file gone from its path into
// StorageUnavailableError, says so in ping() (hence /readyz) and its log, and finds out when writes
// work again; Accounts and /readyz answer such failures with 503, and skip a failed lastUsedAt
// update instead of failing the request.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore, type StorageLog } from '../../src/storage/sqlite-store.js';
import { StorageUnavailableError, type Store } from '../../src/storage/store.js';
import { account, request, startServer } from '../helpers/server.js';

const dirs: string[] = [];
function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-store-'));
  dirs.push(dir);
  return path.join(dir, 'chat.db');
}

afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function recordingLog(): StorageLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    error: (_obj, msg) => lines.push(`error ${msg}`),
    info: (_obj, msg) => lines.push(`info ${msg}`),
  };
}

const batch = (senderId: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    senderId,
    receiver: 'bo',
    content: `message ${i} ${'x'.repeat(500)}`,
    clientId: `c${Date.now()}-${i}`,
  }));

describe('SqliteStore when storage fails', () => {
  it('reports a full database as StorageUnavailableError, and ping fails until space is back', async () => {
    const file = tempFile();
    const log = recordingLog();
    const store = await openSqliteStore({ file, maxPageCount: 200, log });
    const al = await store.createUser('al', 'h');
    await store.createUser('bo', 'h');
    // Another connection takes every page up to the limit.
    const db = new Database(file);
    db.exec('CREATE TABLE filler (b BLOB)');
    db.transaction(() => {
      while ((db.pragma('page_count', { simple: true }) as number) < 200)
        db.prepare('INSERT INTO filler VALUES (zeroblob(1000))').run();
    })();
    const error = await store.appendMessages(batch(al.id, 50)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect((error as Error).cause).toMatchObject({ code: 'SQLITE_FULL' });
    await expect(store.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(log.lines).toEqual([
      'error storage: writes fail; sends get internal_error and /readyz 503 until they succeed again',
    ]);

    db.exec('DROP TABLE filler');
    db.close();
    // A ping probes at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    await expect(store.ping()).resolves.toBeUndefined();
    expect(log.lines.at(-1)).toBe('info storage: writes succeed again');
    expect(await store.appendMessages(batch(al.id, 50))).toHaveLength(50);
    await store.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
  });

  it.each([
    ['deleted', (file: string) => fs.rmSync(path.dirname(file), { recursive: true })],
    [
      'replaced',
      (file: string) => {
        const dir = path.dirname(file);
        fs.renameSync(dir, `${dir}.old`);
        fs.mkdirSync(dir);
        fs.copyFileSync(path.join(`${dir}.old`, 'chat.db'), file);
      },
    ],
  ])('refuses every write once its database file is %s, and says so', async (how, fault) => {
    const file = tempFile();
    dirs.push(`${path.dirname(file)}.old`);
    const log = recordingLog();
    const store = await openSqliteStore({ file, log });
    const al = await store.createUser('al', 'h');
    await store.createUser('bo', 'h');
    expect(await store.appendMessages(batch(al.id, 1))).toHaveLength(1);
    fault(file);
    // The next commit lands in the unlinked file: reported as failed, not stored.
    await expect(store.appendMessages(batch(al.id, 1))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    await expect(store.createUser('cy', 'h')).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.ping()).rejects.toThrow(new RegExp(`was ${how} under the running server`));
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(/^error storage: the database file .* was (deleted|replaced)/);
    // Reads still answer, from the file the store has open.
    expect(await store.findUserByName('al')).toBeDefined();
    await store.close();
  });

  it('notices a deleted database file between writes too', async () => {
    const file = tempFile();
    const log = recordingLog();
    const store = await openSqliteStore({ file, log });
    fs.rmSync(path.dirname(file), { recursive: true });
    const deadline = Date.now() + 3_000;
    while (log.lines.length === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(log.lines[0]).toMatch(/was deleted under the running server/);
    await store.close();
  });
});

describe('the HTTP API when storage cannot take writes', () => {
  it('answers 503 to a login it cannot store, 200 to reads whose lastUsedAt update fails, 503 on /readyz', async () => {
    const file = tempFile();
    const real = await openSqliteStore({ file });
    let broken = false;
    const refuse = () => Promise.reject(new StorageUnavailableError('writes fail: disk full'));
    // The real store, with its writes failing while `broken`.
    const store = new Proxy(real, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        if (broken && ['createSession', 'touchSession', 'ping'].includes(String(key)))
          return refuse;
        return value.bind(target);
      },
    }) as Store;
    const server = await startServer({}, { store });
    try {
      const user = await account(server);
      broken = true;
      const login = await request(server, 'POST', '/login', {
        body: { username: user.username, password: 'a perfectly fine passphrase' },
      });
      expect(login.status).toBe(503);
      expect(login.body.error.code).toBe('unavailable');
      expect(login.headers.get('retry-after')).toBe('5');
      // The account's session has never been used: this request is due a lastUsedAt update.
      expect((await request(server, 'GET', '/users/me', { token: user.token })).status).toBe(200);
      const sessions = await request(server, 'GET', '/sessions', { token: user.token });
      expect(sessions.status).toBe(200);
      expect(sessions.body.sessions[0].lastUsedAt).toBeNull();
      const ready = await request(server, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.checks.storage).toBe('failing');
      broken = false;
      expect((await request(server, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await server.close();
      await real.close();
    }
  });
});
