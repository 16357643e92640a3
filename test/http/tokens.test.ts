// Access tokens (every way one can be bad), refresh-token rotation and reuse detection, logout,
// and WebSocket tickets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtVerify, SignJWT } from 'jose';
import {
  account,
  connect,
  request,
  startServer,
  uniqueName,
  type Account,
  type TestServer,
} from '../helpers/server.js';
import {
  b64url,
  currentSessionId,
  expectError,
  expectUnauthorized,
  ISSUER,
  jwtPart,
  loginOk,
  signAccessToken,
  TEST_SECRET,
} from './support.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ RATE_REGISTER_PER_MIN: '100000', RATE_LOGIN_PER_MIN: '100000' });
});

afterAll(async () => {
  await server?.close();
});

const refresh = (refreshToken: unknown) =>
  request(server, 'POST', '/token/refresh', { body: { refreshToken } });
const me = (token: string) => request(server, 'GET', '/users/me', { token });

describe('protected endpoints without a token', () => {
  it.each([
    ['GET', '/users/me', undefined],
    ['GET', '/users/someone', undefined],
    ['GET', '/users?q=a', undefined],
    ['GET', '/messages?with=someone', undefined],
    ['GET', '/sync', undefined],
    ['GET', '/sessions', undefined],
    ['DELETE', '/sessions/abc', undefined],
    ['POST', '/logout', undefined],
    ['POST', '/websocket/ticket', undefined],
    [
      'POST',
      '/users/me/password',
      { currentPassword: 'whatever1', newPassword: 'new pass phrase' },
    ],
  ])('%s %s -> 401 with WWW-Authenticate: Bearer', async (method, path, body) => {
    expectUnauthorized(await request(server, method, path, { body }));
  });
});

describe('bad access tokens', () => {
  let alice: Account;
  let sid: string;
  beforeAll(async () => {
    alice = await account(server);
    sid = await currentSessionId(server, alice.token);
    expect((await me(alice.token)).status).toBe(200);
  });

  const withHeader = (authorization: string) =>
    request(server, 'GET', '/users/me', { headers: { authorization } });

  it.each([
    ['an empty header', ''],
    ['a Basic scheme', 'Basic YWxpY2U6cGFzc3dvcmQ='],
    ['Bearer without a token', 'Bearer'],
    ['Bearer with blanks only', 'Bearer    '],
    ['two tokens', 'Bearer abc def'],
    ['a non-JWT', 'Bearer not-a-jwt'],
    ['three garbage parts', 'Bearer a.b.c'],
  ])('refuses %s', async (_label, header) => {
    expectUnauthorized(await withHeader(header));
  });

  it('accepts the scheme in any case (RFC 9110: auth schemes are case-insensitive)', async () => {
    expect((await withHeader(`bearer ${alice.token}`)).status).toBe(200);
    expect((await withHeader(`BEARER ${alice.token}`)).status).toBe(200);
  });

  it('refuses the real token under another scheme or glued to the scheme', async () => {
    expectUnauthorized(await withHeader(`Token ${alice.token}`));
    expectUnauthorized(await withHeader(`Bearer${alice.token}`));
    expectUnauthorized(await withHeader(alice.token));
  });

  it('refuses a token with a tampered signature', async () => {
    const [h, p, s] = alice.token.split('.') as [string, string, string];
    const i = Math.floor(s.length / 2);
    const tampered = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    expectUnauthorized(await me(tampered));
    expectUnauthorized(await me(`${h}.${p}.`));
  });

  it('refuses a token with a tampered payload', async () => {
    const [h, , s] = alice.token.split('.') as [string, string, string];
    const claims = jwtPart(alice.token, 1);
    const bob = await account(server);
    const forged = `${h}.${b64url({ ...claims, sub: bob.id })}.${s}`;
    expectUnauthorized(await me(forged));
  });

  it('refuses alg: none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { sid, sub: alice.id, iss: ISSUER, iat: now, exp: now + 600 };
    for (const alg of ['none', 'None', 'NONE']) {
      const token = `${b64url({ alg, typ: 'JWT' })}.${b64url(payload)}.`;
      expectUnauthorized(await me(token));
    }
  });

  it('accepts a well-formed token signed by hand with the server key (control)', async () => {
    const token = await signAccessToken({ sub: alice.id, sid });
    const r = await me(token);
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(alice.id);
  });

  it('refuses a token signed with another secret', async () => {
    const token = await signAccessToken(
      { sub: alice.id, sid },
      { secret: 'another-secret-that-is-also-32-characters-long' },
    );
    expectUnauthorized(await me(token));
  });

  it('refuses HS512 with the right key (only HS256 is accepted)', async () => {
    expectUnauthorized(await me(await signAccessToken({ sub: alice.id, sid }, { alg: 'HS512' })));
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signAccessToken({ sub: alice.id, sid, iat: now - 3600, exp: now - 60 });
    expectUnauthorized(await me(token));
  });

  it('refuses a token of another issuer, or without a session', async () => {
    expectUnauthorized(
      await me(await signAccessToken({ sub: alice.id, sid, iss: 'someone-else' })),
    );
    expectUnauthorized(await me(await signAccessToken({ sub: alice.id })));
  });

  it("refuses a token naming someone else's session or an unknown session", async () => {
    const bob = await account(server);
    const bobSid = await currentSessionId(server, bob.token);
    expectUnauthorized(await me(await signAccessToken({ sub: alice.id, sid: bobSid })));
    expectUnauthorized(await me(await signAccessToken({ sub: alice.id, sid: 'no-such-session' })));
  });

  it('refuses the token of a revoked session, at once', async () => {
    const s = await loginOk(server, alice.username);
    expect((await me(s.token)).status).toBe(200);
    expect((await request(server, 'POST', '/logout', { token: s.token })).status).toBe(204);
    expectUnauthorized(await me(s.token));
    expectUnauthorized(await request(server, 'GET', '/sessions', { token: s.token }));
    // The user's other session is not affected.
    expect((await me(alice.token)).status).toBe(200);
  });
});

describe('tokens missing a claim the server issues', () => {
  let alice: Account;
  let claims: Record<string, unknown>;
  beforeAll(async () => {
    alice = await account(server);
    const now = Math.floor(Date.now() / 1000);
    claims = {
      sub: alice.id,
      sid: await currentSessionId(server, alice.token),
      iss: ISSUER,
      iat: now,
      exp: now + 600,
    };
  });

  /** Signs exactly `payload` with the test key: correctly signed, whatever it lacks. */
  const signRaw = (payload: Record<string, unknown>) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(TEST_SECRET));
  const without = (claim: string) => {
    const { [claim]: _dropped, ...rest } = claims;
    return signRaw(rest);
  };
  const handshake = (token: string) =>
    connect(server, { token }).then(
      (client) => {
        client.close();
        return { status: 101, headers: {} as Record<string, string> };
      },
      (e: { status?: number; headers?: Record<string, string> }) => ({
        status: e.status,
        headers: e.headers ?? {},
      }),
    );

  it('accepts the full set of claims, over HTTP and at the handshake (control)', async () => {
    const token = await signRaw(claims);
    expect((await me(token)).status).toBe(200);
    expect((await handshake(token)).status).toBe(101);
  });

  it.each(['exp', 'iat', 'iss', 'sub', 'sid'])(
    'refuses a correctly signed token without %s: 401 over HTTP and at the handshake',
    async (claim) => {
      const token = await without(claim);
      expectUnauthorized(await me(token));
      expectUnauthorized(await request(server, 'GET', '/sessions', { token }));
      const refused = await handshake(token);
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer');
    },
  );

  it.each([
    ['exp as a string', { exp: 'never' }],
    ['exp as null', { exp: null }],
    ['iat as a string', { iat: 'now' }],
    ['sub as a number', { sub: 1 }],
    ['sid as a number', { sid: 1 }],
    ['sid as null', { sid: null }],
  ])('refuses a correctly signed token with %s', async (_label, override) => {
    const token = await signRaw({ ...claims, ...override });
    expectUnauthorized(await me(token));
    expect((await handshake(token)).status).toBe(401);
  });
});

describe('POST /token/refresh', () => {
  it('returns the login shape, with no-store, for the same session and user', async () => {
    const a = await account(server);
    const sid = await currentSessionId(server, a.token);
    const r = await refresh(a.refreshToken);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual([
      'expiresIn',
      'refreshToken',
      'token',
      'tokenType',
      'user',
    ]);
    expect(r.body.tokenType).toBe('Bearer');
    expect(r.body.expiresIn).toBe(server.config.ACCESS_TOKEN_TTL_SEC);
    expect(r.body.user).toMatchObject({ id: a.id, username: a.username });
    expect(Object.keys(r.body.user).sort()).toEqual(['createdAt', 'id', 'username']);
    expect(r.body.refreshToken).not.toBe(a.refreshToken);
    expect(r.headers.get('cache-control')).toMatch(/no-store/);
    expect(await currentSessionId(server, r.body.token)).toBe(sid);
    expect((await me(r.body.token)).body.id).toBe(a.id);
  });

  it('rotates: the new refresh token works once more, the old one gets 401', async () => {
    const a = await account(server);
    const r1 = await refresh(a.refreshToken);
    expect(r1.status).toBe(200);
    const r2 = await refresh(r1.body.refreshToken);
    expect(r2.status).toBe(200);
    expect(r2.body.refreshToken).not.toBe(r1.body.refreshToken);
    expectUnauthorized(await refresh(a.refreshToken), 'invalid_refresh_token');
  });

  it('treats a used refresh token as theft: the whole session is revoked', async () => {
    const a = await account(server);
    const rotated = await refresh(a.refreshToken);
    expect(rotated.status).toBe(200);
    expect((await me(rotated.body.token)).status).toBe(200);

    expectUnauthorized(await refresh(a.refreshToken), 'invalid_refresh_token');

    // Every token of the session is now dead: both access tokens and the fresh refresh token.
    expectUnauthorized(await me(rotated.body.token));
    expectUnauthorized(await me(a.token));
    expectUnauthorized(await refresh(rotated.body.refreshToken), 'invalid_refresh_token');
  });

  it('does not let reuse in one session touch another session of the user', async () => {
    const a = await account(server);
    const other = await loginOk(server, a.username);
    expect((await refresh(a.refreshToken)).status).toBe(200);
    expect((await refresh(a.refreshToken)).status).toBe(401);
    expect((await me(other.token)).status).toBe(200);
    expect((await refresh(other.refreshToken)).status).toBe(200);
  });

  it('lets exactly one of concurrent refreshes with the same token succeed', async () => {
    const a = await account(server);
    const replies = await Promise.all(Array.from({ length: 5 }, () => refresh(a.refreshToken)));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of replies.filter((x) => x.status !== 200)) {
      expectUnauthorized(r, 'invalid_refresh_token');
    }
  });

  it('refuses an unknown refresh token (401), and one of a logged-out session', async () => {
    expectUnauthorized(await refresh('x'.repeat(43)), 'invalid_refresh_token');
    const a = await account(server);
    expect((await request(server, 'POST', '/logout', { token: a.token })).status).toBe(204);
    expectUnauthorized(await refresh(a.refreshToken), 'invalid_refresh_token');
  });

  it('does not take an access token as a refresh token', async () => {
    const a = await account(server);
    expectUnauthorized(await refresh(a.token), 'invalid_refresh_token');
    expect((await me(a.token)).status).toBe(200);
  });

  it.each([
    ['no body', undefined],
    ['an empty object', {}],
    ['an empty token', { refreshToken: '' }],
    ['a numeric token', { refreshToken: 12345 }],
    ['a null token', { refreshToken: null }],
  ])('refuses %s (400)', async (_label, body) => {
    expectError(await request(server, 'POST', '/token/refresh', { body }), 400);
  });
});

describe('POST /logout', () => {
  it('answers 204 with no body; the session is revoked', async () => {
    const a = await account(server);
    const r = await request(server, 'POST', '/logout', { token: a.token });
    expect(r.status).toBe(204);
    expect(r.body).toBeUndefined();
    expectUnauthorized(await me(a.token));
    expectUnauthorized(await request(server, 'POST', '/logout', { token: a.token }));
  });

  it('accepts an empty body sent as application/json', async () => {
    const a = await account(server);
    const r = await request(server, 'POST', '/logout', {
      token: a.token,
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(204);
    expectUnauthorized(await me(a.token));
  });

  it('leaves the other sessions of the user alone', async () => {
    const a = await account(server);
    const other = await loginOk(server, a.username);
    expect((await request(server, 'POST', '/logout', { token: a.token })).status).toBe(204);
    expect((await me(other.token)).status).toBe(200);
  });

  it('answers 401 to a bad token', async () => {
    expectUnauthorized(await request(server, 'POST', '/logout', { token: 'a.b.c' }));
  });
});

describe('POST /websocket/ticket', () => {
  it('returns {ticket, expiresIn: 30}, a fresh ticket each time, with no-store', async () => {
    const a = await account(server);
    const r1 = await request(server, 'POST', '/websocket/ticket', { token: a.token });
    const r2 = await request(server, 'POST', '/websocket/ticket', { token: a.token });
    expect(r1.status).toBe(200);
    expect(Object.keys(r1.body).sort()).toEqual(['expiresIn', 'ticket']);
    expect(r1.body.expiresIn).toBe(30);
    expect(r1.body.ticket).toBeTypeOf('string');
    expect(r1.body.ticket.length).toBeGreaterThanOrEqual(32);
    expect(r1.body.ticket).not.toContain(a.token);
    expect(r2.body.ticket).not.toBe(r1.body.ticket);
    expect(r1.headers.get('cache-control')).toMatch(/no-store/);
  });

  it('answers 401 without a valid token', async () => {
    expectUnauthorized(await request(server, 'POST', '/websocket/ticket'));
    const a = await account(server, uniqueName('tk'));
    expect((await request(server, 'POST', '/logout', { token: a.token })).status).toBe(204);
    expectUnauthorized(await request(server, 'POST', '/websocket/ticket', { token: a.token }));
  });

  it('is not a bearer token', async () => {
    const a = await account(server);
    const { ticket } = (await request(server, 'POST', '/websocket/ticket', { token: a.token }))
      .body;
    expectUnauthorized(await me(ticket));
  });
});

describe('the test key', () => {
  it('is the one the server signs with (guards the hand-made tokens above)', async () => {
    const a = await account(server);
    const { payload } = await jwtVerify(a.token, new TextEncoder().encode(TEST_SECRET), {
      issuer: ISSUER,
    });
    expect(payload.sub).toBe(a.id);
  });
});
