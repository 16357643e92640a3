// The error contract over HTTP: one body shape everywhere, malformed and non-object JSON,
// wrong types, missing fields, content types, body size, unknown routes, opaque 500s, and
// passwords kept out of the logs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import {
  account,
  PASSWORD,
  request,
  startServer,
  uniqueName,
  type TestServer,
} from '../helpers/server.js';
import { expectError, raw, TEST_SECRET } from './support.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ RATE_REGISTER_PER_MIN: '100000', RATE_LOGIN_PER_MIN: '100000' });
});

afterAll(async () => {
  await server?.close();
});

/** Every route that takes a JSON body, with a valid body for it. */
const BODY_ROUTES: Array<[string, Record<string, unknown>]> = [
  ['/register', { username: 'body_checks', password: PASSWORD }],
  ['/login', { username: 'body_checks', password: PASSWORD }],
  ['/token/refresh', { refreshToken: 'x'.repeat(43) }],
  ['/users/me/password', { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }],
];

describe('malformed JSON', () => {
  let token: string;
  beforeAll(async () => {
    token = (await account(server)).token;
  });

  it.each(
    BODY_ROUTES.flatMap(([route]) =>
      ['{"username":', "{'username': 'x'}", '{"a":1,}', 'undefined', '{"a":1}}', '\u0000'].map(
        (body) => [route, body] as const,
      ),
    ),
  )('POST %s with %j -> 400 invalid_json', async (route, body) => {
    const r = await request(server, 'POST', route, {
      raw: body,
      token,
      headers: { 'content-type': 'application/json' },
    });
    expectError(r, 400, 'invalid_json');
  });

  it('reports invalid JSON with charset in the content type too', async () => {
    const r = await raw(server, 'POST', '/login', '{', 'application/json; charset=utf-8');
    expectError(r, 400, 'invalid_json');
  });
});

describe('bodies that are not objects', () => {
  let token: string;
  beforeAll(async () => {
    token = (await account(server)).token;
  });

  it.each(
    BODY_ROUTES.flatMap(([route]) =>
      ['[]', '"x"', '5', 'null', 'true', '[{"username":"a"}]'].map(
        (body) => [route, body] as const,
      ),
    ),
  )('POST %s with %s -> 400 invalid_request', async (route, body) => {
    const r = await request(server, 'POST', route, {
      raw: body,
      token,
      headers: { 'content-type': 'application/json' },
    });
    expectError(r, 400, 'invalid_request');
  });

  it.each(BODY_ROUTES.map(([route]) => route))(
    'POST %s with no body at all -> 400 invalid_request',
    async (route) => {
      expectError(await request(server, 'POST', route, { token }), 400, 'invalid_request');
      expectError(await raw(server, 'POST', route, ''), 400);
    },
  );
});

describe('wrong types and missing fields', () => {
  let token: string;
  beforeAll(async () => {
    token = (await account(server)).token;
  });

  const cases = BODY_ROUTES.flatMap(([route, valid]) => {
    const fields = Object.keys(valid);
    const out: Array<[string, string, unknown]> = [[route, 'an empty object', {}]];
    for (const f of fields) {
      const { [f]: _dropped, ...rest } = valid;
      out.push([route, `no ${f}`, rest]);
      for (const [label, value] of [
        ['a number', 12345678],
        ['null', null],
        ['a boolean', true],
        ['an array', [valid[f]]],
        ['an object', { value: valid[f] }],
      ] as const) {
        out.push([route, `${f} as ${label}`, { ...valid, [f]: value }]);
      }
    }
    return out;
  });

  it.each(cases)('POST %s with %s -> 400 invalid_request', async (route, _label, body) => {
    const r = await request(server, 'POST', route, { body, token });
    expectError(r, 400, 'invalid_request');
  });
});

describe('content types and sizes', () => {
  it.each([
    ['text/plain', '{"username":"abc","password":"long enough"}'],
    ['text/plain; charset=utf-8', '{"username":"abc","password":"long enough"}'],
    ['application/x-www-form-urlencoded', 'username=abc&password=long+enough'],
    ['multipart/form-data; boundary=xyz', '--xyz--'],
    ['application/xml', '<a/>'],
  ])('refuses %s with 415 unsupported_media_type', async (type, body) => {
    for (const route of ['/register', '/login', '/token/refresh']) {
      expectError(await raw(server, 'POST', route, body, type), 415, 'unsupported_media_type');
    }
  });

  it('refuses a JSON body over 64 KiB with 413 payload_too_large', async () => {
    for (const route of ['/register', '/login', '/token/refresh']) {
      const big = { username: 'abc', password: 'p'.repeat(64 * 1024), refreshToken: 'r' };
      expectError(await request(server, 'POST', route, { body: big }), 413, 'payload_too_large');
    }
    const huge = JSON.stringify({ username: 'abc', password: 'p'.repeat(1024 * 1024) });
    expectError(await raw(server, 'POST', '/login', huge), 413, 'payload_too_large');
  });

  it('reads a body just under 64 KiB (then refuses it for what it says, not its size)', async () => {
    const body = { username: uniqueName('big'), password: 'p'.repeat(60 * 1024) };
    expect(JSON.stringify(body).length).toBeLessThan(64 * 1024);
    const r = await request(server, 'POST', '/register', { body });
    expectError(r, 400, 'invalid_request');
    expect(JSON.stringify(r.body)).not.toContain('pppppppp');
  });
});

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/nope?with=query'],
    ['POST', '/nope'],
    ['DELETE', '/users/me'],
    ['GET', '/register'],
    ['PUT', '/sessions'],
    ['PATCH', '/users/me'],
    ['GET', '/users/me/extra/segments'],
    ['GET', '/api/v1/users'],
  ])('%s %s -> 404 not_found with the error shape', async (method, route) => {
    const r = await request(server, method, route);
    expectError(r, 404, 'not_found');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.body.error.message).not.toContain('with=query');
  });

  it('answers 404 to an unknown route even with a valid token', async () => {
    const { token } = await account(server);
    expectError(await request(server, 'GET', '/users/me/nothing', { token }), 404, 'not_found');
  });
});

describe('headers on every response', () => {
  it('sends nosniff, no X-Powered-By, and JSON content type on successes and errors', async () => {
    const { token } = await account(server);
    const replies = [
      await request(server, 'GET', '/users/me', { token }),
      await request(server, 'GET', '/users/me'),
      await request(server, 'GET', '/nope'),
      await raw(server, 'POST', '/login', '{'),
      await request(server, 'GET', '/healthz'),
    ];
    for (const r of replies) {
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('x-powered-by')).toBeNull();
      expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    }
  });
});

describe('internal errors', () => {
  it('answer 500 internal_error with a generic message: no stack, SQL or detail', async () => {
    const { token } = await account(server);
    const detail = 'SQLITE_CORRUPT: SELECT password_hash FROM users /srv/chat/src/storage/x.ts:12';
    const spy = vi.spyOn(server.store, 'searchUsers').mockRejectedValueOnce(new Error(detail));
    try {
      const r = await request(server, 'GET', '/users?q=abc', { token });
      expectError(r, 500, 'internal_error');
      const text = JSON.stringify(r.body);
      for (const leak of ['SQLITE', 'SELECT', 'password_hash', '.ts', 'at ', 'stack']) {
        expect(text).not.toContain(leak);
      }
    } finally {
      spy.mockRestore();
    }
    expect((await request(server, 'GET', '/users?q=abc', { token })).status).toBe(200);
  });
});

describe('logs', () => {
  it('never contain a password, at any level', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-logs-'));
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'trace',
      DATA_DIR: dir,
      HOST: '127.0.0.1',
    });
    const store = await openSqliteStore({ file: path.join(dir, 'chat.db') });
    const app = await buildApp({
      config,
      store,
      bus: new MemoryBus(),
      logger: pino({ level: 'trace' }, sink),
      jwtSecret: TEST_SECRET,
    });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      const logged = {
        url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
      };
      const secret = 'l0gged-never-passphrase';
      const secret2 = 'an0ther-never-logged-passphrase';
      const name = uniqueName('log');
      expect(
        (await request(logged, 'POST', '/register', { body: { username: name, password: secret } }))
          .status,
      ).toBe(201);
      await request(logged, 'POST', '/register', { body: { username: name, password: secret } });
      await request(logged, 'POST', '/login', { body: { username: name, password: `${secret}x` } });
      const ok = await request(logged, 'POST', '/login', {
        body: { username: name, password: secret },
      });
      expect(ok.status).toBe(200);
      await request(logged, 'POST', '/users/me/password', {
        token: ok.body.token,
        body: { currentPassword: secret, newPassword: secret2 },
      });
      await request(logged, 'POST', '/register', {
        raw: `{"password":"${secret}"`,
        headers: { 'content-type': 'application/json' },
      });
      const all = lines.join('');
      expect(lines.length).toBeGreaterThan(0);
      expect(all).not.toContain(secret);
      expect(all).not.toContain(secret2);
      expect(all).not.toContain(ok.body.token);
      expect(all).not.toContain(ok.body.refreshToken);
    } finally {
      await app.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
