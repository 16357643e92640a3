// The data directory is private to the server's user whatever the umask: the real main.ts runs as
// a child process under umask 000 (the most permissive), and the test checks the modes of the
// directory, the database and its WAL files, and the generated JWT secret.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account } from '../helpers/server.js';

const root = path.resolve(import.meta.dirname, '../..');
const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-datadir-'));
const children: ChildProcess[] = [];

/** The environment without storage or bus settings: SQLite, memory bus, generated JWT secret. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => key !== 'DATABASE_URL' && key !== 'REDIS_URL' && key !== 'JWT_SECRET',
  ),
);

interface Child {
  child: ChildProcess;
  url: string;
  /** Everything the server has written so far (pino JSON lines). */
  output: () => string;
}

/** Starts `src/main.ts` under umask 000 (set by a shell); resolves once it logs the start-up line. */
function startChild(env: Record<string, string>): Promise<Child> {
  const child = spawn(
    '/bin/sh',
    ['-c', 'umask 000 && exec "$0" --import tsx src/main.ts', process.execPath],
    {
      cwd: root,
      env: {
        ...baseEnv,
        PORT: '0',
        HOST: '127.0.0.1',
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = out.match(/chat listening on http:\/\/[^:]+:(\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: `http://127.0.0.1:${match[1]}`, output: () => out });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

/** SIGTERM, and wait for the exit. */
async function stop(c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise((resolve) => c.child.once('exit', resolve));
  c.child.kill('SIGTERM');
  await exited;
}

const modeOf = (file: string): string => (fs.statSync(file).mode & 0o777).toString(8);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(parent, { recursive: true, force: true });
});

describe('the data directory under umask 000', () => {
  it('is created 0700, with chat.db, its -wal and -shm and jwt-secret 0600', async () => {
    const dir = path.join(parent, 'fresh', 'data');
    const server = await startChild({ DATA_DIR: dir });
    try {
      await account(server); // a write: the WAL is in use
      expect(modeOf(dir)).toBe('700');
      for (const name of ['chat.db', 'chat.db-wal', 'chat.db-shm', 'jwt-secret']) {
        expect(modeOf(path.join(dir, name)), name).toBe('600');
      }
      // Nothing was looser, so nothing was tightened.
      expect(server.output()).not.toContain('permissions tightened');
    } finally {
      await stop(server);
    }
  });

  it('tightens an existing directory and everything in it, and logs each path', async () => {
    const dir = path.join(parent, 'loose');
    const first = await startChild({ DATA_DIR: dir });
    await account(first);
    await stop(first);
    // What an older version (or an operator) left behind: readable, even writable, by everyone.
    fs.mkdirSync(path.join(dir, 'backups'));
    fs.writeFileSync(path.join(dir, 'backups', 'old.db'), 'x');
    const loose = ['', 'chat.db', 'jwt-secret', 'backups', path.join('backups', 'old.db')];
    for (const name of loose) fs.chmodSync(path.join(dir, name), 0o777);

    const second = await startChild({ DATA_DIR: dir });
    try {
      await account(second);
      expect(modeOf(dir)).toBe('700');
      expect(modeOf(path.join(dir, 'backups'))).toBe('700');
      // Tightened: group and other bits off, the owner's left as they were.
      for (const name of ['chat.db', 'jwt-secret', path.join('backups', 'old.db')]) {
        expect(modeOf(path.join(dir, name)), name).toBe('700');
      }
      // Created again at this start (SQLite removes them on a clean close), with chat.db's mode.
      for (const name of ['chat.db-wal', 'chat.db-shm']) {
        expect(fs.statSync(path.join(dir, name)).mode & 0o077, name).toBe(0);
      }
      const lines = second
        .output()
        .split('\n')
        .filter((l) => l.includes('permissions tightened'))
        .map((l) => JSON.parse(l) as { path: string; mode: string; now: string; level: number });
      expect(lines.map((l) => l.path).sort()).toEqual(
        loose.map((name) => path.resolve(dir, name)).sort(),
      );
      for (const l of lines) {
        expect(l.mode).toBe('0777');
        expect(l.now).toBe('0700');
        expect(l.level).toBe(40); // warn
      }
    } finally {
      await stop(second);
    }
  });

  it('keeps a sqlite:PATH database private: its new directory 0700, the files 0600', async () => {
    const dir = path.join(parent, 'elsewhere', 'db');
    const file = path.join(dir, 'chat.sqlite');
    const server = await startChild({
      DATABASE_URL: `sqlite:${file}`,
      DATA_DIR: path.join(parent, 'elsewhere', 'data'),
    });
    try {
      await account(server);
      expect(modeOf(dir)).toBe('700');
      for (const name of [file, `${file}-wal`, `${file}-shm`]) expect(modeOf(name)).toBe('600');
      expect(modeOf(path.join(parent, 'elsewhere', 'data'))).toBe('700');
      expect(modeOf(path.join(parent, 'elsewhere', 'data', 'jwt-secret'))).toBe('600');
    } finally {
      await stop(server);
    }
  });
});
