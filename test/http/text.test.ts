// Text that is not well-formed Unicode is refused wherever it comes in over HTTP: lone UTF-16
// surrogates written as `\u` escapes in a JSON body, bytes that are not UTF-8, and query-string
// escapes that do not decode to UTF-8. Each gets 400 invalid_request in the error shape, and
// nothing is stored; well-formed text, escaped or not, still works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  account,
  PASSWORD,
  request,
  startServer,
  uniqueName,
  type Account,
  type TestServer,
} from '../helpers/server.js';
import { expectError, login, raw } from './support.js';

let server: TestServer;
let alice: Account;

beforeAll(async () => {
  server = await startServer();
  alice = await account(server);
});
afterAll(() => server.close());

/** A 400 invalid_request whose message names `field`. */
function expectRefused(r: Awaited<ReturnType<typeof raw>>, field: string): void {
  expectError(r, 400, 'invalid_request');
  expect(r.body.error.message).toContain(field);
  expect(r.body.error.message).toMatch(/well-formed Unicode/);
}

describe('lone surrogates in JSON bodies', () => {
  it('refuses one in the password at registration, and registers nothing', async () => {
    const name = uniqueName('ls');
    const r = await raw(
      server,
      'POST',
      '/register',
      `{"username":"${name}","password":"\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800"}`,
    );
    expectRefused(r, 'password');
    expect(await server.store.findUserByName(name)).toBeUndefined();
  });

  it('refuses one next to other characters (the whole password is not stored altered)', async () => {
    const name = uniqueName('ls');
    const r = await raw(
      server,
      'POST',
      '/register',
      `{"username":"${name}","password":"long enough \\udc00 passphrase"}`,
    );
    expectRefused(r, 'password');
    expect(await server.store.findUserByName(name)).toBeUndefined();
  });

  it('refuses one in the username at registration', async () => {
    const r = await raw(
      server,
      'POST',
      '/register',
      `{"username":"ab\\ud800c","password":"${PASSWORD}"}`,
    );
    expectRefused(r, 'username');
  });

  it('refuses one in the password and in the username at login', async () => {
    expectRefused(
      await raw(server, 'POST', '/login', `{"username":"${alice.username}","password":"x\\ud800"}`),
      'password',
    );
    expectRefused(
      await raw(server, 'POST', '/login', `{"username":"${alice.username}\\udfff","password":"x"}`),
      'username',
    );
    // The owner still logs in: a refused body is not a failed login.
    expect((await login(server, alice.username)).status).toBe(200);
  });

  it('refuses one in a new password, and keeps the old one', async () => {
    const r = await request(server, 'POST', '/users/me/password', {
      token: alice.token,
      raw: `{"currentPassword":"${PASSWORD}","newPassword":"new \\ud800 passphrase"}`,
      headers: { 'content-type': 'application/json' },
    });
    expectRefused(r, 'newPassword');
    expect((await login(server, alice.username)).status).toBe(200);
  });

  it('refuses one in a property name and in a field the route ignores', async () => {
    expectRefused(
      await raw(server, 'POST', '/login', `{"username":"a","password":"b","x\\ud800":1}`),
      'property name',
    );
    expectRefused(
      await raw(server, 'POST', '/login', `{"username":"a","password":"b","extra":["\\udc00"]}`),
      'extra/0',
    );
  });

  it('accepts escaped well-formed text: a password written with a surrogate-pair escape', async () => {
    const name = uniqueName('ls');
    const escaped = `{"username":"${name}","password":"emoji \\ud83d\\ude00 passphrase"}`;
    expect((await raw(server, 'POST', '/register', escaped)).status).toBe(201);
    // The same password sent as raw UTF-8 is the same password.
    expect((await login(server, name, 'emoji 😀 passphrase')).status).toBe(200);
  });
});

describe('bodies that are not UTF-8', () => {
  it('refuses bytes that are not UTF-8 instead of reading them as U+FFFD', async () => {
    const name = uniqueName('ls');
    const body = Buffer.concat([
      Buffer.from(`{"username":"${name}","password":"passphrase `),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const res = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const r = { status: res.status, headers: res.headers, body: (await res.json()) as any };
    expectError(r, 400, 'invalid_request');
    expect(r.body.error.message).toMatch(/UTF-8/);
    expect(await server.store.findUserByName(name)).toBeUndefined();
  });

  it('refuses a surrogate encoded as UTF-8 bytes (ED A0 80)', async () => {
    const body = Buffer.concat([
      Buffer.from(`{"username":"${alice.username}","password":"`),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}'),
    ]);
    const res = await fetch(`${server.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe('invalid_request');
  });
});

describe('query strings', () => {
  it.each([
    ['/users?q=%ED%A0%80', 'a surrogate'],
    ['/users?q=ab%FF', 'a byte that is not UTF-8'],
    ['/users?q=%F0%9F%98', 'a cut sequence'],
    ['/messages?with=%ED%B0%80', 'a surrogate'],
    ['/sync?after=1&x=%C0%AF', 'an overlong form, in a parameter the route ignores'],
  ])('GET %s (%s) -> 400 invalid_request', async (path) => {
    const r = await request(server, 'GET', path, { token: alice.token });
    expectError(r, 400, 'invalid_request');
    expect(r.body.error.message).toMatch(/UTF-8/);
  });

  it('refuses one before authentication too (no token needed to be told)', async () => {
    expectError(await request(server, 'GET', '/users?q=%ED%A0%80'), 400, 'invalid_request');
  });

  it('accepts escapes of well-formed text and stray percent signs', async () => {
    const emoji = await request(server, 'GET', '/users?q=%F0%9F%98%80', { token: alice.token });
    expect(emoji.status).toBe(200);
    expect(emoji.body).toEqual({ users: [] });
    const prefix = encodeURIComponent(alice.username.slice(0, 4));
    const found = await request(server, 'GET', `/users?q=${prefix}`, { token: alice.token });
    expect(found.status).toBe(200);
    expect(found.body.users.map((u: { username: string }) => u.username)).toContain(alice.username);
    expect((await request(server, 'GET', '/users?q=100%', { token: alice.token })).status).toBe(
      200,
    );
  });
});
