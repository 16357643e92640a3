// Operators' view of a whole run: one scenario (accounts, tokens, tickets, WebSockets, messages,
// a group, sync, throttled logins, rate limits, refresh reuse, revocations) against a server that
// logs with the real logger options to a captured stream. Then: no secret used anywhere in the
// run is in the log, every security and connection event has its line (with a request or
// connection id), every chat_ metric moved, and the Grafana dashboard queries only metrics that
// exist.
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loggerOptions } from '../../src/logger.js';
import {
  connect,
  request,
  startServer,
  uniqueName,
  type Client,
  type TestServer,
} from '../helpers/server.js';

const chunks: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    chunks.push(chunk.toString());
    done();
  },
});

let server: TestServer;
/** Every secret the scenario used: passwords, tokens, refresh tokens, tickets, cookies, content. */
const secrets = new Map<string, string>();
let metrics = '';

const rand = () => randomBytes(9).toString('base64url');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const keep = (what: string, value: string): string => {
  expect(value, what).toBeTruthy();
  secrets.set(what, value);
  return value;
};

interface User {
  username: string;
  password: string;
  token: string;
  refreshToken: string;
}

async function register(username: string, password: string): Promise<number> {
  return (await request(server, 'POST', '/register', { body: { username, password } })).status;
}

async function login(
  username: string,
  password: string,
  cookie?: string,
): Promise<User & { cookie: string }> {
  const r = await request(server, 'POST', '/login', {
    body: { username, password },
    headers: cookie ? { cookie } : {},
  });
  expect(r.status).toBe(200);
  const setCookie = r.headers.get('set-cookie') ?? '';
  const device = setCookie.split(';')[0]!;
  keep(`device cookie of ${username} (${secrets.size})`, device.split('=')[1]!);
  keep(`token of ${username} (${secrets.size})`, r.body.token);
  keep(`refresh token of ${username} (${secrets.size})`, r.body.refreshToken);
  return {
    username,
    password,
    token: r.body.token,
    refreshToken: r.body.refreshToken,
    cookie: device,
  };
}

const answer = (c: Client, clientId: string) =>
  c.next((f) => (f.type === 'ack' || f.type === 'error') && f.clientId === clientId);

beforeAll(async () => {
  server = await startServer(
    {
      RATE_REGISTER_PER_MIN: '5',
      RATE_LOGIN_SOURCE_FAILURES: '2',
      RATE_MESSAGES_PER_SEC: '1',
      RATE_MESSAGES_BURST: '20',
      RATE_WS_HANDSHAKES_PER_MIN: '20',
    },
    { logger: pino(loggerOptions('info'), sink) },
  );

  // Accounts: five registrations, then the register limit (per address) trips.
  const names = ['alice', 'bob', 'carol', 'dave', 'eve'].map((n) => uniqueName(n));
  const passwords = names.map((n) => keep(`password of ${n}`, `pw-${rand()}`));
  for (let i = 0; i < 5; i++) expect(await register(names[i]!, passwords[i]!)).toBe(201);
  expect(await register(uniqueName('mallory'), keep('password of mallory', `pw-${rand()}`))).toBe(
    429,
  );
  const [alice, bob, carol, eve] = await Promise.all(
    [0, 1, 2, 4].map((i) => login(names[i]!, passwords[i]!)),
  );
  const dave = { username: names[3]!, password: passwords[3]! };

  // Refresh, then a ticket, and a WebSocket by ticket.
  const refreshed = await request(server, 'POST', '/token/refresh', {
    body: { refreshToken: alice!.refreshToken },
  });
  expect(refreshed.status).toBe(200);
  const aliceToken = keep('refreshed token', refreshed.body.token);
  keep('refreshed refresh token', refreshed.body.refreshToken);
  const ticket = await request(server, 'POST', '/websocket/ticket', { token: aliceToken });
  keep('ticket', ticket.body.ticket);
  const ca = await connect(server, { query: `ticket=${ticket.body.ticket}` });

  // A second session of alice's (with her device cookie), open by ?token=.
  const alice2 = await login(alice!.username, alice!.password, alice!.cookie);
  const ca2 = await connect(server, { query: `token=${alice2.token}` });
  const cb = await connect(server, { token: bob!.token });
  const cc = await connect(server, { token: carol!.token });

  // Messages: stored, delivered, a retry (duplicate), a refusal, a failure.
  const c1 = keep('direct message', `content-${rand()}`);
  ca.send({ type: 'message', receiver: bob!.username, content: c1, clientId: 'm1' });
  expect(await answer(ca, 'm1')).toMatchObject({ type: 'ack' });
  expect(await cb.next((f) => f.type === 'message')).toMatchObject({ content: c1 });
  ca.send({ type: 'message', receiver: bob!.username, content: c1, clientId: 'm1' });
  expect(await answer(ca, 'm1')).toMatchObject({ type: 'ack' });
  ca.send({ type: 'message', receiver: 'nobody_here', content: c1, clientId: 'm2' });
  expect(await answer(ca, 'm2')).toMatchObject({ code: 'unknown_receiver' });
  const spy = vi
    .spyOn(server.store, 'appendMessages')
    .mockRejectedValueOnce(new Error('disk I/O error'));
  const c3 = keep('failed message', `content-${rand()}`);
  ca.send({ type: 'message', receiver: bob!.username, content: c3, clientId: 'm3' });
  expect(await answer(ca, 'm3')).toMatchObject({ code: 'internal_error' });
  spy.mockRestore();

  // A group.
  const g = await request(server, 'POST', '/conversations', {
    token: aliceToken,
    body: { title: 'ops', members: [bob!.username, carol!.username] },
  });
  expect(g.status).toBe(201);
  const c2 = keep('group message', `content-${rand()}`);
  ca.send({ type: 'message', conversationId: g.body.id, content: c2, clientId: 'g1' });
  expect(await answer(ca, 'g1')).toMatchObject({ type: 'ack' });
  expect(await cc.next((f) => f.type === 'message')).toMatchObject({ content: c2 });

  // Sync on the WebSocket and over HTTP.
  cb.send({ type: 'sync', clientId: 's1' });
  await cb.next((f) => f.type === 'synced');
  expect((await request(server, 'GET', '/sync', { token: bob!.token })).status).toBe(200);

  // Eve floods: the message limit trips.
  const ce = await connect(server, { token: eve!.token });
  for (let i = 0; i < 30; i++)
    ce.send({
      type: 'message',
      receiver: bob!.username,
      content: keep(`flood ${i}`, `content-${rand()}`),
      clientId: `f${i}`,
    });
  await ce.next((f) => f.type === 'error' && f.code === 'rate_limited');

  // Wrong passwords, then the throttle.
  for (let i = 0; i < 3; i++) {
    const r = await request(server, 'POST', '/login', {
      body: { username: dave.username, password: keep(`wrong password ${i}`, `pw-${rand()}`) },
    });
    expect(r.status).toBe(i < 2 ? 401 : 429);
  }

  // Refresh reuse: alice's second session is revoked, its WebSocket closed.
  const rotated = await request(server, 'POST', '/token/refresh', {
    body: { refreshToken: alice2.refreshToken },
  });
  keep('rotated token', rotated.body.token);
  keep('rotated refresh token', rotated.body.refreshToken);
  const reused = await request(server, 'POST', '/token/refresh', {
    body: { refreshToken: alice2.refreshToken },
  });
  expect(reused.status).toBe(401);
  expect((await ca2.closed).code).toBe(4001);

  // Revocations: one session by id, a logout, a password change.
  const bob2 = await login(bob!.username, bob!.password);
  const list = await request(server, 'GET', '/sessions', { token: bob!.token });
  const other = list.body.sessions.find((s: { current: boolean }) => !s.current);
  expect(
    (await request(server, 'DELETE', `/sessions/${other.id}`, { token: bob!.token })).status,
  ).toBe(204);
  expect((await request(server, 'GET', '/users/me', { token: bob2.token })).status).toBe(401);
  expect((await request(server, 'POST', '/logout', { token: carol!.token })).status).toBe(204);
  expect((await cc.closed).code).toBe(4001);
  const newPassword = keep('new password', `pw-${rand()}`);
  const changed = await request(server, 'POST', '/users/me/password', {
    token: eve!.token,
    body: { currentPassword: eve!.password, newPassword },
  });
  expect(changed.status).toBe(204);

  // Refused handshakes: no credentials, a bad token, a spent ticket; then the handshake limit.
  const refused = async (query?: string) =>
    connect(server, query ? { query } : {}).then(
      () => 101,
      (e: { status: number }) => e.status,
    );
  expect(await refused()).toBe(401);
  expect(await refused(`token=${keep('bad token', `bad-${rand()}`)}`)).toBe(401);
  expect(await refused(`ticket=${ticket.body.ticket}`)).toBe(401);
  let status = 0;
  for (let i = 0; i < 30 && status !== 429; i++) status = await refused();
  expect(status).toBe(429);

  for (const c of [ca, cb, ce]) c.close();
  await Promise.all([ca, cb, ce].map((c) => c.closed));
  await sleep(200);
  metrics = (await request(server, 'GET', '/metrics')).body as string;
}, 60_000);

afterAll(async () => {
  await server?.close();
});

const lines = () =>
  chunks
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the log of a whole run', () => {
  it('holds no password, token, refresh token, ticket, device cookie or message content', () => {
    const log = chunks.join('');
    expect(log.length).toBeGreaterThan(1000);
    expect(secrets.size).toBeGreaterThan(40);
    const found: string[] = [];
    for (const [what, value] of secrets) {
      if (log.includes(value)) found.push(what);
      // A JWT's signature alone is a secret too.
      const signature = value.split('.')[2];
      if (signature && signature.length > 20 && log.includes(signature)) found.push(what);
    }
    expect(found).toEqual([]);
  });

  it('has a line for each connection and security event, with a request or connection id', () => {
    const all = lines();
    const find = (msg: string, match: (l: Record<string, unknown>) => boolean = () => true) =>
      all.filter((l) => l.msg === msg && match(l));
    const expected: Array<[string, number, (l: Record<string, unknown>) => boolean]> = [
      ['websocket connected', 30, (l) => l.via === 'ticket'],
      ['websocket connected', 30, (l) => l.via === 'token'],
      ['websocket connected', 30, (l) => l.via === 'header'],
      ['websocket closed', 30, (l) => l.code === 4001 && l.reason === 'session_revoked'],
      ['websocket closed', 30, (l) => l.code === 1005 || l.code === 1000],
      ['websocket handshake refused', 30, (l) => l.status === 401 && l.code === 'unauthorized'],
      ['websocket handshake refused', 40, (l) => l.status === 429 && l.code === 'rate_limited'],
      ['websocket frame rate limited', 40, (l) => l.limit === 'messages'],
      ['login throttled', 40, () => true],
      ['rate limited', 40, (l) => l.limit === 'login_failures' && l.route === '/login'],
      ['rate limited', 40, (l) => l.limit === 'register'],
      ['refresh token reused: session revoked', 40, () => true],
      ['sessions revoked', 30, (l) => l.reason === 'refresh_token_reused'],
      ['sessions revoked', 30, (l) => l.reason === 'revoked'],
      ['sessions revoked', 30, (l) => l.reason === 'logout'],
      ['password changed', 30, () => true],
    ];
    for (const [msg, level, match] of expected) {
      const found = find(msg, match);
      expect(found.length, `${msg} ${match.toString()}`).toBeGreaterThan(0);
      for (const l of found) {
        expect(l.level, msg).toBe(level);
        expect(l.reqId ?? l.connectionId, `${msg}: an id`).toBeTruthy();
      }
    }
  });
});

/** The value of a sample line of /metrics (0 if absent). */
function sample(name: string, labels = ''): number {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = metrics.split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length)) : 0;
}

describe('the metrics of a whole run', () => {
  it('every chat_ metric moved', () => {
    expect(sample('chat_delivery_lag_seconds_count')).toBeGreaterThan(0);
    expect(sample('chat_messages_total', 'outcome="stored",code=""')).toBeGreaterThan(2);
    expect(sample('chat_messages_total', 'outcome="duplicate",code=""')).toBe(1);
    expect(sample('chat_messages_total', 'outcome="refused",code="unknown_receiver"')).toBe(1);
    expect(sample('chat_messages_total', 'outcome="refused",code="rate_limited"')).toBeGreaterThan(
      0,
    );
    expect(sample('chat_messages_total', 'outcome="failed",code="internal_error"')).toBe(1);
    expect(sample('chat_dedup_hits_total')).toBe(1);
    expect(sample('chat_websocket_error_frames_total', 'code="rate_limited"')).toBeGreaterThan(0);
    expect(sample('chat_websocket_error_frames_total', 'code="unknown_receiver"')).toBe(1);
    expect(sample('chat_websocket_error_frames_total', 'code="internal_error"')).toBe(1);
    for (const limit of ['messages', 'ws_handshakes', 'login_failures', 'register'])
      expect(sample('chat_rate_limited_total', `limit="${limit}"`), limit).toBeGreaterThan(0);
    for (const via of ['websocket', 'http']) {
      expect(sample('chat_sync_requests_total', `via="${via}"`), via).toBe(1);
      expect(sample('chat_sync_events_replayed_total', `via="${via}"`), via).toBeGreaterThan(0);
    }
  });
});

describe('docs/grafana-dashboard.json', () => {
  let dashboard: any;
  beforeAll(() => {
    const file = new URL('../../docs/grafana-dashboard.json', import.meta.url);
    dashboard = JSON.parse(fs.readFileSync(file, 'utf8'));
  });

  it('has a Prometheus datasource variable that every panel uses', () => {
    const variable = dashboard.templating.list.find(
      (v: { type: string }) => v.type === 'datasource',
    );
    expect(variable).toMatchObject({ query: 'prometheus' });
    for (const panel of dashboard.panels.filter((p: { type: string }) => p.type !== 'row'))
      expect(panel.datasource?.uid, panel.title).toBe(`\${${variable.name}}`);
  });

  it('queries only chat_ metrics that /metrics has, and every one of them', () => {
    const exprs: string[] = dashboard.panels.flatMap(
      (p: { targets?: Array<{ expr: string }> }) => p.targets?.map((t) => t.expr) ?? [],
    );
    const queried = new Set(
      exprs
        .flatMap((e) => e.match(/chat_[a-z_]+/g) ?? [])
        .map((m) => m.replace(/_(bucket|sum|count)$/, '')),
    );
    const exported = new Set(
      metrics
        .split('\n')
        .filter((l) => l.startsWith('# TYPE chat_'))
        .map((l) => l.split(' ')[2]!),
    );
    expect([...queried].filter((m) => !exported.has(m))).toEqual([]);
    expect([...exported].filter((m) => !queried.has(m))).toEqual([]);
  });
});
