// Accounts through the library against a real server: typed results and errors carrying the
// server's codes, logout and password change, and the access token refreshed before it expires
// without two clients of one session ever presenting the same refresh token (the server would
// revoke the session): two "tabs" sharing a token storage stay signed in at expiry.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request, startServer, type TestServer } from '../../test/helpers/server.js';
import {
  broadcastChannelLock,
  ChatError,
  memoryTokenStore,
  processLock,
  type ChatClient,
  type RefreshLock,
  type TokenStore,
} from '../src/index.js';
import { client, PASSWORD, reach, record, signUp, sleep, uniqueName, until } from './support.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});
const track = (c: ChatClient) => {
  cleanup.push(() => c.close());
  return c;
};

describe('accounts', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  it('register, login, me: typed results; failures are ChatErrors with the server’s code', async () => {
    const c = track(client(server));
    const name = uniqueName();
    const user = await c.register(name, PASSWORD);
    expect(user).toEqual({ id: expect.any(String), username: name, createdAt: expect.any(String) });
    const taken = await c.register(name.toUpperCase(), PASSWORD).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(ChatError);
    expect(taken).toMatchObject({ code: 'username_taken', status: 409 });
    await expect(c.register(uniqueName(), 'password')).rejects.toMatchObject({
      code: 'weak_password',
      status: 400,
    });
    await expect(c.me()).rejects.toMatchObject({ code: 'signed_out' });
    await expect(c.login(name, 'not the password')).rejects.toMatchObject({
      code: 'invalid_credentials',
      status: 401,
    });
    expect(await c.login(name, PASSWORD)).toEqual(user);
    expect(c.user).toEqual(user);
    expect(await c.me()).toEqual(user);
  });

  it('a 429 carries retryAfter', async () => {
    const limited = await startServer({ RATE_LOGIN_PER_MIN: '2' });
    cleanup.push(() => limited.close());
    const c = track(client(limited));
    let error: unknown;
    for (let i = 0; i < 10 && !error; i++)
      await c.login('nobody_at_all', 'wrong password').catch((e: ChatError) => {
        if (e.code === 'rate_limited') error = e;
      });
    expect(error).toMatchObject({
      code: 'rate_limited',
      status: 429,
      retryAfter: expect.any(Number),
    });
    expect((error as ChatError).retryAfter).toBeGreaterThan(0);
  });

  it('a password change revokes the other sessions: their connection stops (4001)', async () => {
    const server2 = await startServer();
    cleanup.push(() => server2.close());
    const phone = track(client(server2));
    const laptop = track(client(server2));
    const name = await signUp(phone);
    await laptop.login(name, PASSWORD);
    phone.connect();
    laptop.connect();
    await Promise.all([reach(phone, 'online'), reach(laptop, 'online')]);

    await expect(phone.changePassword('wrong', 'another fine passphrase')).rejects.toMatchObject({
      code: 'invalid_credentials',
      status: 403,
    });
    await phone.changePassword(PASSWORD, 'another fine passphrase');
    await reach(laptop, 'stopped');
    expect(laptop.state).toMatchObject({ reason: 'session_revoked' });
    expect(phone.state.status).toBe('online');
    expect(await phone.me()).toMatchObject({ username: name });
  });

  it('logout revokes the session, stops the connection and drops the outbox', async () => {
    const c = track(client(server));
    const name = await signUp(c);
    const events = record(c);
    c.connect();
    await reach(c, 'online');
    await c.logout();
    expect(c.state).toMatchObject({ status: 'stopped', reason: 'signed_out' });
    expect(events.of('signedOut')).toEqual([{ reason: 'logout' }]);
    expect(c.user).toBeNull();
    await expect(c.me()).rejects.toMatchObject({ code: 'signed_out' });

    await c.login(name, PASSWORD);
    const queued = c.send({ to: name, content: 'never sent' });
    expect(c.pending()).toHaveLength(1);
    await c.logout();
    await expect(queued).rejects.toMatchObject({ code: 'signed_out' });
    expect(c.pending()).toEqual([]);
  });
});

describe('token refresh', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The shortest lifetime the server allows; clients refresh 28.5 s early, 1.5 s after login.
    server = await startServer({ ACCESS_TOKEN_TTL_SEC: '30' });
  });
  afterAll(() => server.close());

  /** A fetch that counts refreshes and answers them `delayMs` late, so that refreshes overlap. */
  function slowRefreshes(delayMs: number) {
    const counter = { refreshes: 0 };
    const fetchFn = async (url: string, init: RequestInit) => {
      if (new URL(url).pathname === '/token/refresh') {
        counter.refreshes += 1;
        const res = await fetch(url, init);
        await sleep(delayMs);
        return res;
      }
      return fetch(url, init);
    };
    return { fetch: fetchFn, counter };
  }

  it('refreshes before the access token expires, and keeps going', async () => {
    const tokens = memoryTokenStore();
    const c = track(client(server, { tokens, refreshMarginSec: 28.5 }));
    const events = record(c);
    const start = Date.now();
    await signUp(c);
    const first = (await tokens.get())!;
    expect(first.lifetimeMs).toBe(30_000);
    c.connect();
    await until(() => events.of('refreshed').length >= 2, 8000, 'two refreshes');
    expect(Date.now() - start).toBeLessThan(8000); // long before the first token's 30 s
    const now = (await tokens.get())!;
    expect(now.accessToken).not.toBe(first.accessToken);
    expect(now.refreshToken).not.toBe(first.refreshToken);
    expect(await c.me()).toMatchObject({ id: first.user.id });
    expect(c.state.status).toBe('online');
    expect(await c.sessions()).toHaveLength(1);
  });

  it('refreshes once and retries when a request gets 401', async () => {
    const tokens = memoryTokenStore();
    const c = track(client(server, { tokens }));
    await signUp(c);
    const stored = (await tokens.get())!;
    await tokens.set({ ...stored, accessToken: `${stored.accessToken}x` });
    expect(await c.me()).toMatchObject({ id: stored.user.id });
    expect((await tokens.get())!.refreshToken).not.toBe(stored.refreshToken);
  });

  /**
   * Two "tabs": clients sharing one token storage, each with its own lock object as tabs have,
   * both connected, both due to refresh at the same moment, refresh answers slowed down so that
   * their refreshes overlap.
   */
  async function twoTabs(locks: [RefreshLock, RefreshLock]) {
    const tokens: TokenStore = memoryTokenStore();
    const slow = slowRefreshes(300);
    const options = { tokens, refreshMarginSec: 28.5, fetch: slow.fetch };
    const tabA = track(client(server, { ...options, lock: locks[0] }));
    const tabB = track(client(server, { ...options, lock: locks[1] }));
    const name = await signUp(tabA);
    expect(await tabB.resume()).toMatchObject({ username: name });
    const a = record(tabA);
    const b = record(tabB);
    tabA.connect();
    tabB.connect();
    await Promise.all([reach(tabA, 'online'), reach(tabB, 'online')]);
    const first = (await tokens.get())!;
    // Both timers fire 1.5 s after login; wait until both tabs are past it.
    await until(
      () => Date.now() > first.expiresAt - 28_500 + 1200 || a.of('signedOut').length > 0,
      5000,
    );
    return { tabA, tabB, a, b, tokens, first, refreshes: slow.counter, name };
  }

  it('two tabs at expiry stay signed in: one refresh under the lock, the other adopts it', async () => {
    const lock = processLock(); // one realm: both "tabs" share it, as with navigator.locks
    const { tabA, tabB, a, b, tokens, first, refreshes } = await twoTabs([lock, lock]);
    expect(refreshes.refreshes).toBe(1);
    expect(a.of('signedOut')).toEqual([]);
    expect(b.of('signedOut')).toEqual([]);
    const now = (await tokens.get())!;
    expect(now.refreshToken).not.toBe(first.refreshToken);
    expect(await tabA.me()).toMatchObject({ id: first.user.id });
    expect(await tabB.me()).toMatchObject({ id: first.user.id });
    expect(tabA.state.status).toBe('online');
    expect(tabB.state.status).toBe('online');
  });

  it('two tabs coordinating over BroadcastChannel stay signed in too', async () => {
    const channel = `test-locks-${uniqueName()}`;
    const locks: [RefreshLock, RefreshLock] = [
      broadcastChannelLock({ channel }),
      broadcastChannelLock({ channel }),
    ];
    cleanup.push(() => locks.forEach((l) => l.close?.()));
    const { tabA, tabB, a, b, first, refreshes } = await twoTabs(locks);
    expect(refreshes.refreshes).toBe(1);
    expect([...a.of('signedOut'), ...b.of('signedOut')]).toEqual([]);
    expect(await tabA.me()).toMatchObject({ id: first.user.id });
    expect(await tabB.me()).toMatchObject({ id: first.user.id });
    expect(tabA.state.status).toBe('online');
    expect(tabB.state.status).toBe('online');
  });

  it('without a shared lock the same race revokes the session (why the lock exists)', async () => {
    const none: RefreshLock = { run: (_name, fn) => fn() };
    const { tabA, tabB, a, b, first, refreshes } = await twoTabs([none, none]);
    expect(refreshes.refreshes).toBe(2);
    await until(() => a.of('signedOut').length > 0 && b.of('signedOut').length > 0, 5000);
    expect(tabA.user).toBeNull();
    expect(tabB.user).toBeNull();
    const check = await request(server, 'POST', '/token/refresh', {
      body: { refreshToken: first.refreshToken },
    });
    expect(check.status).toBe(401);
  });
});
