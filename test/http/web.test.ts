// The browser client's files at `/`: caching, the Content-Security-Policy, what is not served,
// and a missing build. The files here are stand-ins; test/web/ runs the real build in Chromium.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, startServer, type TestServer } from '../helpers/server.js';

const INDEX =
  '<!doctype html><title>chat</title><script type="module" src="./assets/index-AbC123.js"></script>';

describe('the browser client at /', () => {
  let server: TestServer;
  let root: string;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-web-'));
    fs.mkdirSync(path.join(root, 'assets'));
    fs.writeFileSync(path.join(root, 'index.html'), INDEX);
    fs.writeFileSync(path.join(root, 'assets', 'index-AbC123.js'), 'console.log(1);\n');
    fs.writeFileSync(path.join(root, 'assets', 'index-AbC123.css'), 'body{}\n');
    fs.writeFileSync(path.join(root, 'secret.txt'), 'not served\n');
    server = await startServer({}, { webRoot: root });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html uncached, with a strict Content-Security-Policy', async () => {
    const reply = await request(server, 'GET', '/');
    expect(reply.status).toBe(200);
    expect(reply.body).toBe(INDEX);
    expect(reply.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(reply.headers.get('cache-control')).toBe('no-cache');
    const csp = reply.headers.get('content-security-policy') ?? '';
    const host = new URL(server.url).host;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://${host} wss://${host}`);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('answers a matching If-None-Match with 304', async () => {
    const first = await request(server, 'GET', '/');
    const etag = first.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await request(server, 'GET', '/', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get('cache-control')).toBe('no-cache');
  });

  it('serves hashed assets immutable, with their types', async () => {
    const js = await request(server, 'GET', '/assets/index-AbC123.js');
    expect(js.status).toBe(200);
    expect(js.body).toBe('console.log(1);\n');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const css = await request(server, 'GET', '/assets/index-AbC123.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const head = await fetch(`${server.url}/assets/index-AbC123.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it.each([
    '/assets/missing-1.js',
    '/assets/..%2Fsecret.txt',
    '/assets/.hidden.js',
    '/assets/index-AbC123.txt',
    '/secret.txt',
    '/index.html',
    '/no/such/route',
  ])('keeps the JSON 404 for %s', async (url) => {
    const reply = await request(server, 'GET', url);
    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe('not_found');
    expect(reply.headers.get('cache-control')).toBe('no-store');
  });

  it('leaves the API as it was', async () => {
    const reply = await request(server, 'GET', '/healthz');
    expect(reply.body).toEqual({ status: 'ok' });
    expect((await request(server, 'POST', '/')).status).toBe(404);
  });

  it('derives the WebSocket origin from PUBLIC_URL when set', async () => {
    const other = await startServer({ PUBLIC_URL: 'https://chat.example.com' }, { webRoot: root });
    try {
      const reply = await request(other, 'GET', '/');
      expect(reply.headers.get('content-security-policy')).toContain(
        "connect-src 'self' wss://chat.example.com;",
      );
    } finally {
      await other.close();
    }
  });
});

describe('without a build', () => {
  it('says at / how to build it, and the API works', async () => {
    const server = await startServer({}, { webRoot: path.join(os.tmpdir(), 'no-such-web-build') });
    try {
      const reply = await request(server, 'GET', '/');
      expect(reply.status).toBe(503);
      expect(reply.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(reply.body).toContain('npm run build:web');
      expect(reply.headers.get('cache-control')).toBe('no-store');
      expect((await request(server, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
