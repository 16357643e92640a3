// Rate limits: registrations and logins per client address, other requests per address (failed
// logins: login-throttle.test.ts). Every 429 has the error shape, Retry-After and the RateLimit-*
// headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  account,
  request,
  startServer,
  uniqueName,
  type Reply,
  type TestServer,
} from '../helpers/server.js';
import { expectError, login, register } from './support.js';

/** A 429 as the contract describes it; returns Retry-After in seconds. */
function expectRateLimited(r: Reply, limit: number): number {
  expectError(r, 429, 'rate_limited');
  const retryAfter = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThan(0);
  expect(r.headers.get('ratelimit-limit')).toBe(String(limit));
  expect(r.headers.get('ratelimit-remaining')).toBe('0');
  expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
  return retryAfter;
}

const servers: TestServer[] = [];
async function serverWith(env: Record<string, string>): Promise<TestServer> {
  const s = await startServer(env);
  servers.push(s);
  return s;
}

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('POST /register per address (RATE_REGISTER_PER_MIN=3)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWith({ RATE_REGISTER_PER_MIN: '3' });
  });

  it('lets 3 through with RateLimit headers, refuses the 4th with 429 and Retry-After', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await register(server, uniqueName('rl'));
      expect(r.status).toBe(201);
      expect(r.headers.get('ratelimit-limit')).toBe('3');
      expect(r.headers.get('ratelimit-remaining')).toBe(String(2 - i));
    }
    const name = uniqueName('rl');
    const r = await register(server, name);
    const retryAfter = expectRateLimited(r, 3);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Refused means not registered.
    expect(await server.store.findUserByName(name)).toBeUndefined();
  });

  it('does not spill over to logins or other requests', async () => {
    // The register budget is spent (previous test); logins have their own.
    const name = uniqueName('rl');
    await server.store.createUser(name, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA');
    expect((await login(server, name)).status).toBe(401);
    expect((await request(server, 'GET', '/healthz')).status).toBe(200);
  });
});

describe('POST /login per address (RATE_LOGIN_PER_MIN=3)', () => {
  let server: TestServer;
  let name: string;
  beforeAll(async () => {
    server = await serverWith({ RATE_LOGIN_PER_MIN: '3' });
    name = uniqueName('ll');
    expect((await register(server, name)).status).toBe(201);
  });

  it('refuses the 4th login from one address with 429, Retry-After and RateLimit headers', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await login(server, name);
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-limit')).toBe('3');
    }
    const r = await login(server, name);
    expectRateLimited(r, 3);
    expect(JSON.stringify(r.body)).not.toContain('token');
  });
});

describe('other requests per address (RATE_API_PER_MIN)', () => {
  it('refuses requests over the limit with 429; health endpoints stay open', async () => {
    const server = await serverWith({ RATE_API_PER_MIN: '5' });
    const { token } = await account(server);
    const replies: Reply[] = [];
    for (let i = 0; i < 6; i++) replies.push(await request(server, 'GET', '/users/me', { token }));
    expect(replies.slice(0, 5).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expectRateLimited(replies[5]!, 5);
    expect((await request(server, 'GET', '/healthz')).status).toBe(200);
    expect((await request(server, 'GET', '/readyz')).status).toBe(200);
  });
});

describe('defaults', () => {
  it('do not stop ordinary use: dozens of registrations and logins, hundreds of requests', async () => {
    const server = await serverWith({});
    const names = Array.from({ length: 30 }, () => uniqueName('ord'));
    for (const name of names) expect((await register(server, name)).status).toBe(201);
    const tokens: string[] = [];
    for (const name of names) {
      const r = await login(server, name);
      expect(r.status).toBe(200);
      tokens.push(r.body.token);
    }
    const statuses = await Promise.all(
      Array.from({ length: 300 }, () =>
        request(server, 'GET', '/users/me', { token: tokens[0]! }).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});
