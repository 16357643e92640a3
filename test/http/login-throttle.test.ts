// Login throttling over real HTTP (OWASP: per account and source, growing delays, no lockout by
// a stranger). Client addresses come from X-Forwarded-For (TRUST_PROXY=true), so one test can be
// several sources. Every refusal is a 429 in the error shape with Retry-After, and a client that
// waits it out gets through; wrong passwords stay 401 invalid_credentials.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import type { Store } from '../../src/storage/store.js';
import {
  PASSWORD,
  startServer,
  uniqueName,
  type Reply,
  type TestServer,
} from '../helpers/server.js';
import { expectError, login, register } from './support.js';

const WRONG = 'not the right passphrase';
const servers: TestServer[] = [];

async function serverWith(env: Record<string, string>): Promise<TestServer> {
  const s = await startServer({
    TRUST_PROXY: 'true',
    RATE_LOGIN_PER_MIN: '100000',
    RATE_REGISTER_PER_MIN: '100000',
    RATE_LOGIN_SOURCE_FAILURES: '3',
    RATE_LOGIN_DELAY_SEC: '1',
    RATE_LOGIN_MAX_DELAY_SEC: '4',
    ...env,
  });
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A login from `address`, with a device cookie when given. */
function from(
  server: TestServer,
  address: string,
  name: string,
  password = PASSWORD,
  cookie?: string,
): Promise<Reply> {
  return login(server, name, password, {
    'x-forwarded-for': address,
    ...(cookie ? { cookie: `theme=dark; chat_device=${cookie}` } : {}),
  });
}

/** A throttled login: 429 rate_limited, Retry-After, RateLimit headers; returns Retry-After. */
function expectThrottled(r: Reply, limit: number): number {
  expectError(r, 429, 'rate_limited');
  const retryAfter = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThan(0);
  expect(r.headers.get('ratelimit-limit')).toBe(String(limit));
  expect(r.headers.get('ratelimit-remaining')).toBe('0');
  expect(JSON.stringify(r.body)).not.toContain('token');
  return retryAfter;
}

const wait = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000 + 50));

/** The device cookie a successful login set, after checking its attributes. */
function deviceCookie(r: Reply): string {
  expect(r.status).toBe(200);
  const header = r.headers.get('set-cookie') ?? '';
  const match = /^chat_device=([^;]+); (.*)$/.exec(header);
  expect(match, header).not.toBeNull();
  const attributes = match![2]!.split('; ');
  expect(attributes).toEqual(
    expect.arrayContaining(['Path=/login', 'HttpOnly', 'SameSite=Strict', 'Max-Age=2592000']),
  );
  expect(attributes).not.toContain('Secure'); // no https PUBLIC_URL here
  return match![1]!;
}

describe('one source (RATE_LOGIN_SOURCE_FAILURES=3)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWith({});
  });

  it('gets a few tries, then growing waits; never a lock: waiting it out gets through', async () => {
    const alice = uniqueName('one');
    expect((await register(server, alice)).status).toBe(201);
    for (let i = 0; i < 3; i++)
      expectError(await from(server, '192.0.2.10', alice, WRONG), 401, 'invalid_credentials');
    // Even the right password waits its turn from this source.
    expect(expectThrottled(await from(server, '192.0.2.10', alice), 3)).toBe(1);
    await wait(1);
    expectError(await from(server, '192.0.2.10', alice, WRONG), 401, 'invalid_credentials');
    const second = expectThrottled(await from(server, '192.0.2.10', alice, WRONG), 3);
    expect(second).toBe(2);
    // Refused attempts count nothing: asking again does not make the wait longer.
    expect(expectThrottled(await from(server, '192.0.2.10', alice), 3)).toBeLessThanOrEqual(2);
    await wait(second);
    expect((await from(server, '192.0.2.10', alice)).status).toBe(200);
    // A success forgets this source's failures.
    for (let i = 0; i < 3; i++)
      expect((await from(server, '192.0.2.10', alice, WRONG)).status).toBe(401);
  });

  it('counts any spelling of the name as one account, and unknown names the same way', async () => {
    const ghost = uniqueName('ghost');
    for (const spelling of [ghost, ghost.toUpperCase(), ghost])
      expect((await from(server, '192.0.2.11', spelling, WRONG)).status).toBe(401);
    expectThrottled(await from(server, '192.0.2.11', ghost.toUpperCase(), WRONG), 3);
  });

  it('counts an IPv6 client by its /64', async () => {
    const name = uniqueName('six');
    expect((await register(server, name)).status).toBe(201);
    for (const address of ['2001:db8:aa:bb::1', '2001:db8:aa:bb::abcd', '2001:db8:aa:bb:ffff::2'])
      expect((await from(server, address, name, WRONG)).status).toBe(401);
    expectThrottled(await from(server, '2001:db8:aa:bb:1:2:3:4', name), 3);
    expect((await from(server, '2001:db8:aa:bc::1', name)).status).toBe(200); // another /64
  });

  it('counts parallel attempts one by one: no more than the free ones get a password check', async () => {
    const name = uniqueName('par');
    expect((await register(server, name)).status).toBe(201);
    const replies = await Promise.all(
      Array.from({ length: 12 }, () => from(server, '192.0.2.12', name, WRONG)),
    );
    expect(replies.filter((r) => r.status === 401)).toHaveLength(3);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(9);
  });
});

describe('strangers cannot lock the owner out', () => {
  let server: TestServer;
  let alice: string;
  let cookie: string;
  beforeAll(async () => {
    server = await serverWith({ RATE_LOGIN_ACCOUNT_FAILURES: '6', RATE_LOGIN_MAX_DELAY_SEC: '60' });
    alice = uniqueName('own');
    expect((await register(server, alice)).status).toBe(201);
    // The owner logs in from home once: home becomes known, and the device gets its cookie.
    cookie = deviceCookie(await from(server, '203.0.113.5', alice));
  });

  it("does not slow the owner's known address for another address's failures", async () => {
    for (let i = 0; i < 3; i++)
      expect((await from(server, '198.51.100.1', alice, WRONG)).status).toBe(401);
    expectThrottled(await from(server, '198.51.100.1', alice), 3);
    expect((await from(server, '203.0.113.5', alice)).status).toBe(200);
    // A wrong password from home is still just wrong.
    expectError(await from(server, '203.0.113.5', alice, WRONG), 401, 'invalid_credentials');
    expect((await from(server, '203.0.113.5', alice)).status).toBe(200);
  });

  it('slows unknown sources once the account has its ceiling of failures; known ones get in', async () => {
    // A distributed attacker: three more addresses (the first test's three failures count too).
    for (const host of ['198.51.100.2', '198.51.100.3'])
      for (let i = 0; i < 3; i++) await from(server, host, alice, WRONG);
    // A fresh address is slowed at its first attempt, right password or not.
    const retryAfter = expectThrottled(await from(server, '198.51.100.77', alice), 6);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // Known sources are not: the known address, and the device cookie from a new address.
    expect((await from(server, '203.0.113.5', alice)).status).toBe(200);
    const elsewhere = await from(server, '192.0.2.200', alice, PASSWORD, cookie);
    expect(deviceCookie(elsewhere).split('.')[0]).toBe(cookie.split('.')[0]); // same device, renewed
    // An unknown source that waits its turn still gets through with the right password.
    await wait(retryAfter);
    expect((await from(server, '198.51.100.77', alice)).status).toBe(200);
  });

  it('gives a device cookie failures of its own, and ignores a cookie of another account', async () => {
    const stolen = '192.0.2.201';
    for (let i = 0; i < 3; i++)
      expect((await from(server, stolen, alice, WRONG, cookie)).status).toBe(401);
    expectThrottled(await from(server, stolen, alice, PASSWORD, cookie), 3);
    // The owner's home address is a source of its own.
    expect((await from(server, '203.0.113.5', alice)).status).toBe(200);

    const bob = uniqueName('bob');
    expect((await register(server, bob)).status).toBe(201);
    const bobsCookie = deviceCookie(await from(server, '192.0.2.202', bob));
    // Alice's account is over its ceiling: bob's cookie makes no known source of alice's.
    expect((await from(server, '192.0.2.203', alice, PASSWORD, bobsCookie)).status).toBe(429);
    expect((await from(server, '192.0.2.203', alice, PASSWORD, 'tampered.1.x')).status).toBe(429);
  });
});

describe('the device cookie', () => {
  it('is Secure when the public URL is https', async () => {
    const server = await serverWith({ PUBLIC_URL: 'https://chat.example.com' });
    const name = uniqueName('sec');
    expect((await register(server, name)).status).toBe(201);
    const r = await from(server, '192.0.2.1', name);
    expect(r.headers.get('set-cookie')).toMatch(/; Secure$/);
  });

  it('is not set by a failed or throttled login', async () => {
    const server = await serverWith({});
    const name = uniqueName('noc');
    expect((await register(server, name)).status).toBe(201);
    for (let i = 0; i < 4; i++) {
      const r = await from(server, '192.0.2.2', name, WRONG);
      expect(r.status).toBe(i < 3 ? 401 : 429);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
  });
});

describe('an attempt the server could not decide', () => {
  it('counts as no failure: a 500 leaves the source its free tries', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-throttle-'));
    const real = await openSqliteStore({ file: path.join(dir, 'chat.db') });
    let failing = false;
    // The store fails user lookups while `failing` is set.
    const store = new Proxy(real, {
      get(target, key, receiver) {
        if (key === 'findUserByName' && failing)
          return async () => {
            throw new Error('the disk is on fire');
          };
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    const server = await startServer(
      { TRUST_PROXY: 'true', RATE_LOGIN_SOURCE_FAILURES: '2' },
      { store },
    );
    try {
      const name = uniqueName('und');
      expect((await register(server, name)).status).toBe(201);
      failing = true;
      for (let i = 0; i < 4; i++)
        expectError(await from(server, '192.0.2.3', name, WRONG), 500, 'internal_error');
      failing = false;
      for (let i = 0; i < 2; i++)
        expect((await from(server, '192.0.2.3', name, WRONG)).status).toBe(401);
      expectThrottled(await from(server, '192.0.2.3', name), 2);
    } finally {
      await server.close();
      await real.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
