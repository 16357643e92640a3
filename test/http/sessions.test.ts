// GET /sessions, DELETE /sessions/{id} and POST /users/me/password (which revokes the others).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account, PASSWORD, request, startServer, type TestServer } from '../helpers/server.js';
import {
  currentSessionId,
  expectError,
  expectUnauthorized,
  ISO_UTC,
  login,
  loginOk,
  sessionsOf,
} from './support.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ RATE_REGISTER_PER_MIN: '100000', RATE_LOGIN_PER_MIN: '100000' });
});

afterAll(async () => {
  await server?.close();
});

const me = (token: string) => request(server, 'GET', '/users/me', { token });
const refresh = (refreshToken: string) =>
  request(server, 'POST', '/token/refresh', { body: { refreshToken } });

describe('GET /sessions', () => {
  it('lists {id, createdAt, lastUsedAt, userAgent, current}, current only for the caller', async () => {
    const a = await account(server);
    const phone = await loginOk(server, a.username, PASSWORD, { 'user-agent': 'PhoneApp/1.0' });
    const laptop = await loginOk(server, a.username, PASSWORD, { 'user-agent': 'Laptop/2.0' });

    const r = await request(server, 'GET', '/sessions', { token: phone.token });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(['sessions']);
    const sessions = r.body.sessions as Array<Record<string, unknown>>;
    expect(sessions).toHaveLength(3);
    for (const s of sessions) {
      expect(Object.keys(s).sort()).toEqual([
        'createdAt',
        'current',
        'id',
        'lastUsedAt',
        'userAgent',
      ]);
      expect(s.id).toBeTypeOf('string');
      expect(s.createdAt).toMatch(ISO_UTC);
      expect(typeof s.current).toBe('boolean');
    }
    expect(new Set(sessions.map((s) => s.id)).size).toBe(3);
    const current = sessions.filter((s) => s.current);
    expect(current).toHaveLength(1);
    expect(current[0]!.userAgent).toBe('PhoneApp/1.0');
    expect(sessions.map((s) => s.userAgent)).toContain('Laptop/2.0');

    // Seen from the laptop, the laptop is current.
    const fromLaptop = await sessionsOf(server, laptop.token);
    expect(fromLaptop.find((s) => s.current)!.userAgent).toBe('Laptop/2.0');
    expect(fromLaptop.find((s) => s.current)!.id).not.toBe(current[0]!.id);
  });

  it('keeps lastUsedAt null until a session is used, and sets it at its first use', async () => {
    const a = await account(server);
    const b = await loginOk(server, a.username, PASSWORD, { 'user-agent': 'never-used' });
    const before = Date.now();

    let list = await sessionsOf(server, a.token);
    const bView = list.find((s) => s.userAgent === 'never-used')!;
    expect(bView).toBeDefined();
    expect(bView.current).toBe(false);
    expect(bView.lastUsedAt).toBeNull(); // logging in is not a use
    const aView = list.find((s) => s.current)!;
    expect(aView.lastUsedAt).toMatch(ISO_UTC); // this very request is a use

    expect((await me(b.token)).status).toBe(200);
    list = await sessionsOf(server, a.token);
    const used = list.find((s) => s.id === bView.id)!;
    expect(used.lastUsedAt).toMatch(ISO_UTC);
    expect(Date.parse(used.lastUsedAt!)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(used.lastUsedAt!)).toBeLessThanOrEqual(Date.now() + 1000);
    expect(Date.parse(used.lastUsedAt!)).toBeGreaterThanOrEqual(Date.parse(used.createdAt));
  });

  it('counts a refresh as a use of the session (it authenticates with one of its tokens)', async () => {
    const a = await account(server);
    const b = await loginOk(server, a.username, PASSWORD, { 'user-agent': 'refresh-only' });
    const bSid = (await sessionsOf(server, a.token)).find(
      (x) => x.userAgent === 'refresh-only',
    )!.id;
    expect((await sessionsOf(server, a.token)).find((x) => x.id === bSid)!.lastUsedAt).toBeNull();
    expect((await refresh(b.refreshToken)).status).toBe(200);
    const after = (await sessionsOf(server, a.token)).find((x) => x.id === bSid)!;
    expect(after.lastUsedAt).toMatch(ISO_UTC);
  });

  it('shows only the caller’s own sessions', async () => {
    const a = await account(server);
    const b = await account(server);
    const bSid = await currentSessionId(server, b.token);
    const aList = await sessionsOf(server, a.token);
    expect(aList).toHaveLength(1);
    expect(aList.map((s) => s.id)).not.toContain(bSid);
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await request(server, 'GET', '/sessions'));
    expectUnauthorized(await request(server, 'GET', '/sessions', { token: 'x.y.z' }));
  });
});

describe('DELETE /sessions/{id}', () => {
  it('revokes another session of the caller: 204, and that session gets 401 at once', async () => {
    const a = await account(server);
    const other = await loginOk(server, a.username);
    const otherSid = await currentSessionId(server, other.token);

    const r = await request(server, 'DELETE', `/sessions/${otherSid}`, { token: a.token });
    expect(r.status).toBe(204);
    expect(r.body).toBeUndefined();

    expectUnauthorized(await me(other.token));
    expectUnauthorized(await refresh(other.refreshToken), 'invalid_refresh_token');
    expect((await me(a.token)).status).toBe(200);
    expect((await sessionsOf(server, a.token)).map((s) => s.id)).not.toContain(otherSid);

    // Already revoked: not found.
    expectError(
      await request(server, 'DELETE', `/sessions/${otherSid}`, { token: a.token }),
      404,
      'session_not_found',
    );
  });

  it('can revoke the current session', async () => {
    const a = await account(server);
    const sid = await currentSessionId(server, a.token);
    expect((await request(server, 'DELETE', `/sessions/${sid}`, { token: a.token })).status).toBe(
      204,
    );
    expectUnauthorized(await me(a.token));
  });

  it("answers 404 for someone else's session, and leaves it alone", async () => {
    const a = await account(server);
    const b = await account(server);
    const bSid = await currentSessionId(server, b.token);
    const r = await request(server, 'DELETE', `/sessions/${bSid}`, { token: a.token });
    expectError(r, 404, 'session_not_found');
    expect((await me(b.token)).status).toBe(200);
    // The same answer as for an id that does not exist: no way to probe for ids.
    const unknown = await request(server, 'DELETE', '/sessions/no-such-session', {
      token: a.token,
    });
    expect(unknown.body).toEqual(r.body);
  });

  it.each([
    ['an unknown id', 'no-such-session'],
    ['a numeric id', '12345'],
    ['a long id', 'x'.repeat(100)],
  ])('answers 404 for %s', async (_label, id) => {
    const a = await account(server);
    expectError(
      await request(server, 'DELETE', `/sessions/${id}`, { token: a.token }),
      404,
      'session_not_found',
    );
  });

  it('answers 401 without a valid token', async () => {
    const a = await account(server);
    const sid = await currentSessionId(server, a.token);
    expectUnauthorized(await request(server, 'DELETE', `/sessions/${sid}`));
    expect((await me(a.token)).status).toBe(200);
  });
});

describe('POST /users/me/password', () => {
  const change = (token: string | undefined, body: unknown) =>
    request(server, 'POST', '/users/me/password', { token, body });

  it('changes the password: 204, other sessions revoked, the current one kept', async () => {
    const a = await account(server);
    const other1 = await loginOk(server, a.username);
    const other2 = await loginOk(server, a.username);
    const newPassword = 'a brand new passphrase';

    const r = await change(a.token, { currentPassword: PASSWORD, newPassword });
    expect(r.status).toBe(204);
    expect(r.body).toBeUndefined();

    for (const o of [other1, other2]) {
      expectUnauthorized(await me(o.token));
      expectUnauthorized(await refresh(o.refreshToken), 'invalid_refresh_token');
    }
    expect((await me(a.token)).status).toBe(200);
    const list = await sessionsOf(server, a.token);
    expect(list).toHaveLength(1);
    expect(list[0]!.current).toBe(true);
    // The current session's refresh token keeps working too.
    expect((await refresh(a.refreshToken)).status).toBe(200);

    expectError(await login(server, a.username, PASSWORD), 401, 'invalid_credentials');
    await loginOk(server, a.username, newPassword);
  });

  it('answers 403 invalid_credentials to a wrong current password, and changes nothing', async () => {
    const a = await account(server);
    const other = await loginOk(server, a.username);
    const r = await change(a.token, {
      currentPassword: `${PASSWORD}?`,
      newPassword: 'a brand new passphrase',
    });
    expectError(r, 403, 'invalid_credentials');
    expect(r.headers.get('www-authenticate')).toBeNull();
    expect((await me(a.token)).status).toBe(200);
    expect((await me(other.token)).status).toBe(200);
    await loginOk(server, a.username, PASSWORD);
    expect((await login(server, a.username, 'a brand new passphrase')).status).toBe(401);
  });

  it.each(['password123', 'PassWord123', 'qwertyuiop'])(
    'refuses the common new password %s (400 weak_password)',
    async (newPassword) => {
      const a = await account(server);
      expectError(
        await change(a.token, { currentPassword: PASSWORD, newPassword }),
        400,
        'weak_password',
      );
      await loginOk(server, a.username, PASSWORD);
    },
  );

  it.each([
    ['a short new password', { currentPassword: PASSWORD, newPassword: 'short' }],
    ['7 emoji', { currentPassword: PASSWORD, newPassword: '😀🎉🐍🚀🌍🍕🎸' }],
    ['257 characters', { currentPassword: PASSWORD, newPassword: 'p'.repeat(257) }],
    ['no new password', { currentPassword: PASSWORD }],
    ['no current password', { newPassword: 'a brand new passphrase' }],
    ['a numeric new password', { currentPassword: PASSWORD, newPassword: 123456789 }],
    ['an empty object', {}],
    ['a non-object', ['x']],
  ])('refuses %s (400)', async (_label, body) => {
    const a = await account(server);
    expectError(await change(a.token, body), 400);
    await loginOk(server, a.username, PASSWORD);
  });

  it('accepts a new password of 8 emoji (8 code points)', async () => {
    const a = await account(server);
    const newPassword = '😀🎉🐍🚀🌍🍕🎸🦄';
    expect((await change(a.token, { currentPassword: PASSWORD, newPassword })).status).toBe(204);
    await loginOk(server, a.username, newPassword);
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(
      await change(undefined, { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }),
    );
    expectUnauthorized(
      await change('a.b.c', { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }),
    );
  });
});
