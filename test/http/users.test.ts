// GET /users/me, GET /users/{username}, GET /users?q=, and the HTTP error paths of
// GET /messages and GET /sync.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  account,
  connect,
  request,
  startServer,
  uniqueName,
  type Account,
  type TestServer,
} from '../helpers/server.js';
import { expectError, expectUnauthorized, ISO_UTC } from './support.js';

let server: TestServer;
let alice: Account;

/** A syntactically valid hash nobody can log in with: seeds users without argon2 work. */
const FAKE_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA';

beforeAll(async () => {
  server = await startServer({ RATE_REGISTER_PER_MIN: '100000', RATE_LOGIN_PER_MIN: '100000' });
  alice = await account(server, `Alice_${uniqueName('u')}`.slice(0, 32));
});

afterAll(async () => {
  await server?.close();
});

/** GET as alice, or as `token`; `null` sends no token. */
const get = (path: string, token: string | null = alice.token) =>
  request(server, 'GET', path, { token: token ?? undefined });

describe('GET /users/me', () => {
  it('returns {id, username, createdAt} of the caller', async () => {
    const r = await get('/users/me');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      id: alice.id,
      username: alice.username,
      createdAt: expect.any(String),
    });
    expect(r.body.createdAt).toMatch(ISO_UTC);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await get('/users/me', null));
    expectUnauthorized(await get('/users/me', 'nope'));
  });
});

describe('GET /users/{username}', () => {
  it('returns {id, username, createdAt, online} in the registered spelling, any case', async () => {
    const bob = await account(server, `BoB.${uniqueName('b')}`.slice(0, 32));
    for (const variant of [bob.username, bob.username.toLowerCase(), bob.username.toUpperCase()]) {
      const r = await get(`/users/${encodeURIComponent(variant)}`);
      expect(r.status).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(['createdAt', 'id', 'online', 'username']);
      expect(r.body).toMatchObject({ id: bob.id, username: bob.username, online: false });
      expect(r.body.createdAt).toMatch(ISO_UTC);
    }
  });

  it('shows online: true while the user has an open WebSocket', async () => {
    const carol = await account(server);
    const ws = await connect(server, { token: carol.token });
    try {
      expect((await get(`/users/${carol.username}`)).body.online).toBe(true);
    } finally {
      ws.close();
      await ws.closed;
    }
    let online = true;
    for (let i = 0; i < 50 && online; i++) {
      online = (await get(`/users/${carol.username}`)).body.online;
      if (online) await new Promise((r) => setTimeout(r, 20));
    }
    expect(online).toBe(false);
  });

  it.each([
    ['an unknown name', () => uniqueName('ghost')],
    ['a name too short to exist', () => 'ab'],
    ['a name too long to exist', () => 'x'.repeat(100)],
    ['a name with characters no username has', () => 'no%20such%20user'],
  ])('answers 404 user_not_found for %s', async (_label, name) => {
    expectError(await get(`/users/${name()}`), 404, 'user_not_found');
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await get(`/users/${alice.username}`, null));
  });
});

describe('GET /users?q=', () => {
  const prefix = `srch${Math.floor(Math.random() * 1e6)}`;
  const names: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 25; i++) {
      const name = `${i % 2 === 0 ? prefix : prefix.toUpperCase()}_${String(i).padStart(2, '0')}`;
      names.push(name);
      await server.store.createUser(name, FAKE_HASH);
    }
    await server.store.createUser(`${prefix}Ax`, FAKE_HASH);
    await server.store.createUser(`x${prefix}_99`, FAKE_HASH);
  });

  it('returns {users: [{id, username, createdAt}]}, at most 20 by default, ordered by name', async () => {
    const r = await get(`/users?q=${prefix}_`);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(['users']);
    expect(r.body.users).toHaveLength(20);
    for (const u of r.body.users) {
      expect(Object.keys(u).sort()).toEqual(['createdAt', 'id', 'username']);
      expect(u.id).toBeTypeOf('string');
      expect(u.createdAt).toMatch(ISO_UTC);
    }
    const got = r.body.users.map((u: { username: string }) => u.username);
    expect(got).toEqual(names.slice(0, 20)); // registered spelling, case-insensitive order
  });

  it('matches the prefix regardless of case', async () => {
    const lower = await get(`/users?q=${prefix}_&limit=100`);
    const upper = await get(`/users?q=${prefix.toUpperCase()}_&limit=100`);
    expect(lower.body.users).toHaveLength(25);
    expect(upper.body.users).toEqual(lower.body.users);
    const mixed = await get(`/users?q=${prefix.toUpperCase()}a`);
    expect(mixed.body.users.map((u: { username: string }) => u.username)).toEqual([`${prefix}Ax`]);
  });

  it('matches only prefixes, and takes _ . - literally', async () => {
    const r = await get(`/users?q=${prefix}_&limit=100`);
    const got = r.body.users.map((u: { username: string }) => u.username);
    expect(got).not.toContain(`x${prefix}_99`);
    expect(got).not.toContain(`${prefix}Ax`);
    expect((await get(`/users?q=${prefix}.`)).body.users).toEqual([]);
    expect((await get(`/users?q=${encodeURIComponent('%')}`)).body.users).toEqual([]);
  });

  it('honours limit from 1 to 100', async () => {
    expect((await get(`/users?q=${prefix}&limit=1`)).body.users).toHaveLength(1);
    expect((await get(`/users?q=${prefix}&limit=7`)).body.users).toHaveLength(7);
    expect((await get(`/users?q=${prefix}&limit=100`)).body.users).toHaveLength(26);
  });

  it('returns an empty list when nothing matches; accepts a q of 32 characters', async () => {
    const r = await get(`/users?q=${'z'.repeat(32)}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ users: [] });
  });

  it.each([
    ['no q', '/users'],
    ['an empty q', '/users?q='],
    ['a q of 33 characters', `/users?q=${'a'.repeat(33)}`],
    ['limit=0', '/users?q=a&limit=0'],
    ['limit=101', '/users?q=a&limit=101'],
    ['limit=-1', '/users?q=a&limit=-1'],
    ['limit=abc', '/users?q=a&limit=abc'],
    ['limit= (empty)', '/users?q=a&limit='],
  ])('answers 400 for %s', async (_label, path) => {
    expectError(await get(path), 400, 'invalid_request');
  });

  // An integer parameter must be written as an integer (src/http/validator.ts), not truncated.
  it.each([
    ['limit=1.5', '/users?q=a&limit=1.5'],
    ['limit=0x10', '/users?q=a&limit=0x10'],
  ])('answers 400 for %s', async (_label, path) => {
    expectError(await get(path), 400, 'invalid_request');
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await get(`/users?q=${prefix}`, null));
  });
});

describe('GET /messages (HTTP error paths)', () => {
  it('returns an empty history with a user never written to, in any case of their name', async () => {
    const bob = await account(server);
    for (const name of [bob.username, bob.username.toUpperCase()]) {
      const r = await get(`/messages?with=${name}`);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ messages: [], hasMore: false });
    }
    const r = await get(`/messages?with=${bob.username}&limit=100&before=12345`);
    expect(r.body).toEqual({ messages: [], hasMore: false });
  });

  it('answers 404 user_not_found for an unknown user', async () => {
    expectError(await get(`/messages?with=${uniqueName('ghost')}`), 404, 'user_not_found');
  });

  it.each([
    ['no with', '/messages'],
    ['an empty with', '/messages?with='],
    ['limit=0', '/messages?with=WHO&limit=0'],
    ['limit=101', '/messages?with=WHO&limit=101'],
    ['limit=abc', '/messages?with=WHO&limit=abc'],
    ['before=abc', '/messages?with=WHO&before=abc'],
    ['before=-1', '/messages?with=WHO&before=-1'],
    ['before=1.5', '/messages?with=WHO&before=1.5'],
    ['an empty before', '/messages?with=WHO&before='],
    ['a 17-digit before', `/messages?with=WHO&before=${'9'.repeat(17)}`],
  ])('answers 400 for %s', async (_label, path) => {
    expectError(await get(path.replace('WHO', alice.username)), 400, 'invalid_request');
  });

  it('answers 400 for limit=2.5', async () => {
    expectError(await get(`/messages?with=${alice.username}&limit=2.5`), 400, 'invalid_request');
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await get(`/messages?with=${alice.username}`, null));
    expectUnauthorized(await get(`/messages?with=${alice.username}`, 'a.b.c'));
  });
});

describe('GET /sync (HTTP error paths)', () => {
  it('returns an empty page for a user with no messages', async () => {
    const dave = await account(server);
    const r = await get('/sync', dave.token);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ messages: [], hasMore: false, lastId: null });
    const after = await get('/sync?after=42&limit=10', dave.token);
    expect(after.status).toBe(200);
    expect(after.body.messages).toEqual([]);
    expect(after.body.hasMore).toBe(false);
  });

  it.each([
    ['after=abc', '/sync?after=abc'],
    ['after=-5', '/sync?after=-5'],
    ['limit=0', '/sync?limit=0'],
    ['limit=1001', '/sync?limit=1001'],
    ['limit=x', '/sync?limit=x'],
  ])('answers 400 for %s', async (_label, path) => {
    expectError(await get(path), 400, 'invalid_request');
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await get('/sync', null));
  });
});
