// Durability: a server killed with SIGKILL right after acking loses none of the acked messages.
// The server runs as a child process (the real main.ts), so the kill is a real crash: on SQLite,
// and on PostgreSQL + Redis when those are available (see test/helpers/services.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { account, connect, request } from '../helpers/server.js';
import { serviceUrl } from '../helpers/services.js';

const root = path.resolve(import.meta.dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-crash-'));
const children: ChildProcess[] = [];

/** The environment without storage or bus settings: what the SQLite run starts with. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => key !== 'DATABASE_URL' && key !== 'REDIS_URL'),
);

const databaseUrl = serviceUrl('DATABASE_URL', 'postgres:');
const redisUrl = serviceUrl('REDIS_URL', 'redis:');
const backends: Array<[string, Record<string, string>]> = [['SQLite', {}]];
if (databaseUrl && redisUrl) {
  backends.push([
    'PostgreSQL + Redis',
    {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      JWT_SECRET: 'crash-test-secret-that-is-at-least-32-characters',
    },
  ]);
}

/** Starts `src/main.ts` on a free port; resolves with its URL once it logs the start-up line. */
function startChild(
  storage: Record<string, string>,
): Promise<{ child: ChildProcess; url: string; wsUrl: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: {
      ...baseEnv,
      ...storage,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dir,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      RATE_MESSAGES_PER_SEC: '100000',
      RATE_MESSAGES_BURST: '100000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = out.match(/chat listening on http:\/\/[^:]+:(\d+)/);
      if (match) {
        clearTimeout(timer);
        const url = `http://127.0.0.1:${match[1]}`;
        resolve({ child, url, wsUrl: `${url.replace('http', 'ws')}/websocket` });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(backends)('crash safety on %s', (_name, storage) => {
  it('keeps every acked message after SIGKILL and restart', async () => {
    const first = await startChild(storage);
    const alice = await account(first);
    const bob = await account(first);
    const a = await connect(first, { token: alice.token });
    const acked = new Map<string, string>();
    a.ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'ack') {
        acked.set(f.clientId, f.id);
        // Kill the moment the 200th ack arrives: later frames may or may not have been stored.
        if (acked.size === 200) first.child.kill('SIGKILL');
      }
    });
    for (let i = 0; i < 400; i++)
      a.send({ receiver: bob.username, content: `m${i}`, clientId: `k${i}` });
    await new Promise<void>((resolve) => first.child.on('exit', () => resolve()));
    expect(acked.size).toBeGreaterThanOrEqual(200);

    const second = await startChild(storage);
    // Tokens survive the restart: the generated JWT secret is kept in DATA_DIR (or JWT_SECRET).
    const stored: Array<{ id: string; content: string }> = [];
    let before: string | undefined;
    for (;;) {
      const res = await request(
        second,
        'GET',
        `/messages?with=${bob.username}&limit=100${before ? `&before=${before}` : ''}`,
        {
          token: alice.token,
        },
      );
      expect(res.status).toBe(200);
      stored.unshift(...res.body.messages);
      if (!res.body.hasMore) break;
      before = res.body.messages[0].id;
    }
    const byContent = new Map(stored.map((m) => [m.content, m.id]));
    for (const [clientId, id] of acked) expect(byContent.get(`m${clientId.slice(1)}`)).toBe(id);
    // Whatever was stored is a prefix of what was sent, in order.
    expect(stored.map((m) => m.content)).toEqual(
      Array.from({ length: stored.length }, (_, i) => `m${i}`),
    );
    second.child.kill('SIGTERM');
    await new Promise((resolve) => second.child.on('exit', resolve));
    expect(second.child.exitCode).toBe(0);
  }, 60_000);
});
