// POST /register and POST /login: username and password rules, hashing, response shapes,
// case-insensitivity, identical failures, and that passwords never come back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, request, startServer, uniqueName, type TestServer } from '../helpers/server.js';
import { ISO_UTC, expectError, jwtPart, login, loginOk, register, sessionsOf } from './support.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ RATE_REGISTER_PER_MIN: '100000', RATE_LOGIN_PER_MIN: '100000' });
});

afterAll(async () => {
  await server?.close();
});

describe('POST /register', () => {
  it('creates an account: 201 {id, username, createdAt} and nothing else', async () => {
    const name = uniqueName('reg');
    const r = await register(server, name);
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(Object.keys(r.body).sort()).toEqual(['createdAt', 'id', 'username']);
    expect(r.body.id).toBeTypeOf('string');
    expect(r.body.id.length).toBeGreaterThan(0);
    expect(r.body.username).toBe(name);
    expect(r.body.createdAt).toMatch(ISO_UTC);
    expect(Math.abs(Date.parse(r.body.createdAt) - Date.now())).toBeLessThan(60_000);
  });

  it('accepts usernames of 3 and 32 characters using every allowed character class', async () => {
    for (const name of ['a.b', 'Z_9', 'x-y', `${'Ab0_.-'.repeat(5)}zz`]) {
      expect(name.length === 3 || name.length === 32).toBe(true);
      const r = await register(server, name);
      expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(201);
      expect(r.body.username).toBe(name);
    }
  });

  it.each([
    ['2 characters', 'ab'],
    ['33 characters', 'a'.repeat(33)],
    ['empty', ''],
    ['a space', 'bad name'],
    ['an @', 'bad@name'],
    ['a slash', 'bad/name'],
    ['a non-ASCII letter', 'námé'],
    ['an emoji', 'abc😀'],
    ['a NUL', 'abc\u0000'],
  ])('refuses a username with %s (400)', async (_label, username) => {
    const r = await register(server, username);
    expectError(r, 400, 'invalid_request');
  });

  it('refuses a username that exists in any letter case (409 username_taken)', async () => {
    const name = `Taken_${uniqueName('t')}`.slice(0, 32);
    expect((await register(server, name)).status).toBe(201);
    for (const variant of [name, name.toLowerCase(), name.toUpperCase()]) {
      const r = await register(server, variant, 'another fine passphrase');
      expectError(r, 409, 'username_taken');
    }
  });

  it('lets exactly one of concurrent registrations of one name (different cases) win', async () => {
    const base = uniqueName('race').toLowerCase();
    const variants = [base, base.toUpperCase(), `${base[0]!.toUpperCase()}${base.slice(1)}`, base];
    const replies = await Promise.all(variants.map((v) => register(server, v)));
    expect(replies.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of replies.filter((x) => x.status !== 201)) expectError(r, 409, 'username_taken');
  });

  it('returns the registered spelling everywhere, whatever case a client uses', async () => {
    const name = `MiXeD.${uniqueName('c')}`.slice(0, 32);
    expect((await register(server, name)).status).toBe(201);
    const session = await loginOk(server, name.toLowerCase());
    expect(session.user.username).toBe(name);
    const me = await request(server, 'GET', '/users/me', { token: session.token });
    expect(me.body.username).toBe(name);
    const found = await request(server, 'GET', `/users/${name.toUpperCase()}`, {
      token: session.token,
    });
    expect(found.status).toBe(200);
    expect(found.body.username).toBe(name);
  });
});

describe('passwords', () => {
  it('counts code points: 8 emoji (16 UTF-16 units) are accepted, 7 emoji (14 units) refused', async () => {
    const eight = '😀🎉🐍🚀🌍🍕🎸🦄';
    expect([...eight]).toHaveLength(8);
    expect(eight.length).toBe(16);
    const name = uniqueName('emoji');
    expect((await register(server, name, eight)).status).toBe(201);
    await loginOk(server, name, eight);

    const seven = '😀🎉🐍🚀🌍🍕🎸';
    expect(seven.length).toBe(14);
    expectError(await register(server, uniqueName('emoji'), seven), 400, 'invalid_request');
  });

  it('accepts 8 and 256 characters, refuses 7 and 257', async () => {
    const p256 = 'k'.repeat(128) + 'q'.repeat(128);
    const name = uniqueName('long');
    expect((await register(server, name, p256)).status).toBe(201);
    await loginOk(server, name, p256);
    expect((await register(server, uniqueName('len8'), 'zq8wx.v3')).status).toBe(201);
    expectError(await register(server, uniqueName('len7'), 'zq8wx.v'), 400, 'invalid_request');
    expectError(await register(server, uniqueName('len257'), p256 + 'k'), 400, 'invalid_request');
  });

  it('accepts 256 emoji (512 UTF-16 units) and refuses 257', async () => {
    const p = '🦄'.repeat(255) + '🐍';
    const name = uniqueName('emo256');
    expect((await register(server, name, p)).status).toBe(201);
    await loginOk(server, name, p);
    expectError(await register(server, uniqueName('emo257'), p + '🐍'), 400, 'invalid_request');
  });

  it('takes any characters (spaces, quotes, newlines, NUL, non-Latin) verbatim', async () => {
    const p = ' "quoted" \\ back\nslash\ttab\u0000nul пароль 密码 ';
    const name = uniqueName('anych');
    expect((await register(server, name, p)).status).toBe(201);
    await loginOk(server, name, p);
    expect((await login(server, name, p.trim())).status).toBe(401);
    expect((await login(server, name, p.replace('\u0000', ''))).status).toBe(401);
  });

  it('never truncates a password: a prefix or a different last character does not log in', async () => {
    const p = 'abcdefghij'.repeat(25) + 'xyzXYZ';
    expect([...p]).toHaveLength(256);
    const name = uniqueName('trunc');
    expect((await register(server, name, p)).status).toBe(201);
    expect((await login(server, name, p.slice(0, 72))).status).toBe(401);
    expect((await login(server, name, p.slice(0, 128))).status).toBe(401);
    expect((await login(server, name, p.slice(0, 255) + 'Q')).status).toBe(401);
    await loginOk(server, name, p);
  });

  it.each(['password123', 'qwertyuiop', 'PassWord123', 'QWERTYUIOP', '12345678'])(
    'refuses the common password %s (400 weak_password)',
    async (password) => {
      const r = await register(server, uniqueName('weak'), password);
      expectError(r, 400, 'weak_password');
      expect(JSON.stringify(r.body)).not.toContain(password);
    },
  );

  it('stores a salted argon2id hash with m >= 19456, t >= 2, p = 1', async () => {
    const a = uniqueName('hash');
    const b = uniqueName('hash');
    expect((await register(server, a)).status).toBe(201);
    expect((await register(server, b)).status).toBe(201);
    const ha = (await server.store.findUserByName(a))!.passwordHash;
    const hb = (await server.store.findUserByName(b))!.passwordHash;
    for (const h of [ha, hb]) {
      const m = h.match(
        /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/,
      );
      expect(m, h).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(19456);
      expect(Number(m![2])).toBeGreaterThanOrEqual(2);
      expect(Number(m![3])).toBe(1);
      expect(Buffer.from(m![4]!, 'base64').length).toBeGreaterThanOrEqual(16);
      expect(h).not.toContain(PASSWORD);
    }
    // Same password, different salts, different hashes.
    expect(ha).not.toBe(hb);
    expect(ha.split('$')[4]).not.toBe(hb.split('$')[4]);
  });

  it('never returns the password in any response', async () => {
    const secret = 'un1que-secret-passphrase-§42';
    const name = uniqueName('never');
    const replies = [await register(server, name, secret)];
    replies.push(await register(server, name, secret)); // 409
    replies.push(await login(server, name, secret));
    const { token, refreshToken } = replies.at(-1)!.body;
    replies.push(await login(server, name, `${secret}x`)); // 401
    replies.push(await request(server, 'POST', '/token/refresh', { body: { refreshToken } }));
    const t = replies.at(-1)!.body.token;
    replies.push(await request(server, 'GET', '/users/me', { token: t }));
    replies.push(await request(server, 'GET', `/users/${name}`, { token: t }));
    replies.push(await request(server, 'GET', `/users?q=${name}`, { token: t }));
    replies.push(await request(server, 'GET', '/sessions', { token: t }));
    replies.push(
      await request(server, 'POST', '/users/me/password', {
        token: t,
        body: { currentPassword: secret, newPassword: 'x' },
      }),
    ); // 400
    replies.push(
      await request(server, 'POST', '/users/me/password', {
        token: t,
        body: { currentPassword: `${secret}!`, newPassword: `${secret}2` },
      }),
    ); // 403
    expect(token).toBeTypeOf('string');
    for (const r of replies) {
      const text = JSON.stringify(r.body) + JSON.stringify([...r.headers]);
      expect(text).not.toContain(secret);
      expect(text).not.toMatch(/passwordHash|password_hash|argon2/i);
    }
  });
});

describe('POST /login', () => {
  let name: string;
  beforeAll(async () => {
    name = `Login.${uniqueName('L')}`.slice(0, 32);
    expect((await register(server, name)).status).toBe(201);
  });

  it('returns {token, tokenType: "Bearer", expiresIn, refreshToken, user} with no-store', async () => {
    const r = await login(server, name);
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
    expect(Number.isInteger(r.body.expiresIn)).toBe(true);
    expect(r.body.token.split('.')).toHaveLength(3);
    expect(jwtPart(r.body.token, 0).alg).toBe('HS256');
    const claims = jwtPart(r.body.token, 1);
    expect((claims.exp as number) - (claims.iat as number)).toBe(r.body.expiresIn);
    expect(r.body.refreshToken).toBeTypeOf('string');
    expect(r.body.refreshToken.length).toBeGreaterThanOrEqual(32);
    expect(r.body.refreshToken).not.toBe(r.body.token);
    expect(Object.keys(r.body.user).sort()).toEqual(['createdAt', 'id', 'username']);
    expect(r.body.user.username).toBe(name);
    expect(r.body.user.createdAt).toMatch(ISO_UTC);
    expect(r.headers.get('cache-control')).toMatch(/no-store/);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('x-powered-by')).toBeNull();
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it('gives each login its own session and tokens', async () => {
    const a = await loginOk(server, name);
    const b = await loginOk(server, name);
    expect(a.token).not.toBe(b.token);
    expect(a.refreshToken).not.toBe(b.refreshToken);
    expect(jwtPart(a.token, 1).sid).not.toBe(jwtPart(b.token, 1).sid);
    const ids = (await sessionsOf(server, a.token)).map((s) => s.id);
    expect(ids).toContain(jwtPart(a.token, 1).sid);
    expect(ids).toContain(jwtPart(b.token, 1).sid);
  });

  it('ignores the case of the username', async () => {
    for (const variant of [name.toLowerCase(), name.toUpperCase()]) {
      const s = await loginOk(server, variant);
      expect(s.user.username).toBe(name);
    }
  });

  it('does not ignore the case of the password', async () => {
    expectError(await login(server, name, PASSWORD.toUpperCase()), 401, 'invalid_credentials');
  });

  it('answers an unknown user and a wrong password with the identical 401', async () => {
    const unknown = await login(server, uniqueName('nobody'));
    const wrong = await login(server, name, `${PASSWORD}!`);
    const malformedName = await login(server, 'x');
    for (const r of [unknown, wrong, malformedName]) expectError(r, 401, 'invalid_credentials');
    expect(wrong.body).toEqual(unknown.body);
    expect(malformedName.body).toEqual(unknown.body);
    expect(wrong.headers.get('www-authenticate')).toBe(unknown.headers.get('www-authenticate'));
  });

  it.each([
    ['no password', { username: 'someone' }],
    ['no username', { password: PASSWORD }],
    ['a numeric username', { username: 12345, password: PASSWORD }],
    ['a null password', { username: 'someone', password: null }],
    ['an array password', { username: 'someone', password: [PASSWORD] }],
  ])('refuses a body with %s (400)', async (_label, body) => {
    expectError(await request(server, 'POST', '/login', { body }), 400, 'invalid_request');
  });
});
