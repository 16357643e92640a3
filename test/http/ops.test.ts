// Operations endpoints: /healthz, /readyz, /metrics (and who may read it), /openapi.json, /docs.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { request, startServer, type TestServer } from '../helpers/server.js';
import { expectError } from './support.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.close();
});

describe('GET /healthz', () => {
  it('answers 200 {status: "ok"} without a token', async () => {
    const r = await request(server, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ok');
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });
});

describe('GET /readyz', () => {
  it('answers 200 {status: "ready"} when storage and bus answer', async () => {
    const r = await request(server, 'GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ready');
    expect(r.body.checks).toEqual({ storage: 'ok', bus: 'ok' });
  });

  it('answers 503, with the error shape, when storage does not answer', async () => {
    const spy = vi
      .spyOn(server.store, 'ping')
      .mockRejectedValue(new Error('disk I/O error /data/chat.db'));
    try {
      const r = await request(server, 'GET', '/readyz');
      expectError({ ...r, body: { error: r.body.error } }, 503, 'unavailable');
      expect(r.body.status).not.toBe('ready');
      expect(r.body.checks.storage).not.toBe('ok');
      expect(r.body.checks.bus).toBe('ok');
      expect(JSON.stringify(r.body)).not.toContain('disk I/O');
      // Liveness does not depend on storage.
      expect((await request(server, 'GET', '/healthz')).status).toBe(200);
    } finally {
      spy.mockRestore();
    }
    expect((await request(server, 'GET', '/readyz')).status).toBe(200);
  });
});

describe('GET /metrics', () => {
  const TOKEN = 'metrics-token-for-the-tests-0123456789';
  let production: TestServer;
  let behindProxy: TestServer;
  let development: TestServer;

  beforeAll(async () => {
    [production, behindProxy, development] = await Promise.all([
      startServer({ NODE_ENV: 'production', METRICS_TOKEN: TOKEN }),
      startServer({ NODE_ENV: 'production', TRUST_PROXY: 'true' }),
      startServer({ NODE_ENV: 'development', TRUST_PROXY: 'true', METRICS_TOKEN: TOKEN }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([production?.close(), behindProxy?.close(), development?.close()]);
  });

  const expectPrometheus = (r: { status: number; headers: Headers; body: unknown }) => {
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toMatch(/^# HELP /m);
    expect(r.body).toMatch(/^# TYPE chat_http_request_duration_seconds histogram$/m);
    expect(r.body).toMatch(/^chat_websocket_connections \d+$/m);
  };

  it('serves Prometheus text to loopback when no token is configured', async () => {
    await request(server, 'GET', '/healthz');
    const r = await request(server, 'GET', '/metrics');
    expectPrometheus(r);
    expect(r.body).toMatch(/chat_http_request_duration_seconds_count\{[^}]*route="\/healthz"/);
  });

  it('with METRICS_TOKEN in production: 403 without the token, even from loopback', async () => {
    expectError(await request(production, 'GET', '/metrics'), 403, 'forbidden');
    expectError(
      await request(production, 'GET', '/metrics', { token: 'wrong-token' }),
      403,
      'forbidden',
    );
    expectError(
      await request(production, 'GET', '/metrics', { token: `${TOKEN}x` }),
      403,
      'forbidden',
    );
    expectError(
      await request(production, 'GET', '/metrics', { headers: { authorization: TOKEN } }),
      403,
      'forbidden',
    );
  });

  it('with METRICS_TOKEN in production: 200 with the token', async () => {
    expectPrometheus(await request(production, 'GET', '/metrics', { token: TOKEN }));
  });

  it('without a token in production: 403 for a non-loopback client address', async () => {
    const r = await request(behindProxy, 'GET', '/metrics', {
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expectError(r, 403, 'forbidden');
    expectPrometheus(await request(behindProxy, 'GET', '/metrics'));
  });

  it('is open in development', async () => {
    expectPrometheus(
      await request(development, 'GET', '/metrics', {
        headers: { 'x-forwarded-for': '203.0.113.7' },
      }),
    );
  });
});

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3 document listing every HTTP path of the contract', async () => {
    const r = await request(server, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\./);
    expect(r.body.info.title).toBeTypeOf('string');
    const paths = r.body.paths as Record<string, Record<string, unknown>>;
    const expected: Array<[string, string]> = [
      ['/register', 'post'],
      ['/login', 'post'],
      ['/token/refresh', 'post'],
      ['/logout', 'post'],
      ['/users/me/password', 'post'],
      ['/websocket/ticket', 'post'],
      ['/users/me', 'get'],
      ['/users/{username}', 'get'],
      ['/users', 'get'],
      ['/messages', 'get'],
      ['/sync', 'get'],
      ['/sessions', 'get'],
      ['/sessions/{id}', 'delete'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/metrics', 'get'],
    ];
    for (const [p, method] of expected) {
      expect(paths[p], p).toBeDefined();
      expect(paths[p]![method], `${method} ${p}`).toBeDefined();
    }
    const register = paths['/register']!.post as { responses: Record<string, unknown> };
    expect(Object.keys(register.responses)).toEqual(
      expect.arrayContaining(['201', '400', '409', '429']),
    );
    const me = paths['/users/me']!.get as { security?: unknown[] };
    expect(me.security).toEqual([{ bearerAuth: [] }]);
    expect(r.body.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
  });
});

describe('GET /docs', () => {
  it('serves the API documentation as HTML', async () => {
    const res = await fetch(`${server.url}/docs`, { redirect: 'follow' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html.toLowerCase()).toContain('swagger');
  });
});
