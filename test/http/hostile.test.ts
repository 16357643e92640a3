// Hostile HTTP: what a fetch client cannot send (unknown methods, broken request lines, huge
// headers, broken chunking) written byte by byte on a socket, paths Fastify refuses before routing,
// what Node used to answer by itself, and compressed bodies. Every error answer has the
// documented shape and a code from the catalogue, echoes no URL or credential, and is logged once
// with the query string redacted and long URLs cut.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { ERRORS } from '../../src/errors.js';
import { LOGGED_URL_MAX, loggerOptions } from '../../src/logger.js';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import {
  PASSWORD,
  request,
  startServer,
  uniqueName,
  type Reply,
  type TestServer,
} from '../helpers/server.js';
import { expectError, TEST_SECRET } from './support.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ RATE_REGISTER_PER_MIN: '100000', RATE_LOGIN_PER_MIN: '100000' });
});

afterAll(async () => {
  await server?.close();
});

/** What a test puts where a credential would go: it must come back in no response or log line. */
const SECRET = 'SeCrEt-credential-0123456789';

interface RawReply extends Reply {
  /** The response head and body as received. */
  text: string;
}

/** Every response in `data`, in order (the server answers with Content-Length). */
function parseResponses(data: Buffer): RawReply[] {
  const replies: RawReply[] = [];
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return replies;
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? 0);
    const text = rest.subarray(end + 4, end + 4 + length).toString('utf8');
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    replies.push({
      status: Number(statusLine.split(' ')[1]),
      headers,
      body,
      text: `${rest.subarray(0, end).toString('latin1')}\r\n\r\n${text}`,
    });
    rest = rest.subarray(end + 4 + length);
  }
}

/**
 * Writes `bytes` on a new connection and returns every response read until the server closes it
 * (or `ms` passes: then this side closes).
 */
function rawHttp(target: { url: string }, bytes: string | Buffer, ms = 3000): Promise<RawReply[]> {
  const { port } = new URL(target.url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseResponses(Buffer.concat(chunks)));
    });
    socket.write(bytes);
  });
}

/** The one response to `bytes`. */
async function rawOne(target: { url: string }, bytes: string | Buffer): Promise<RawReply> {
  const replies = await rawHttp(target, bytes);
  expect(replies, 'exactly one response').toHaveLength(1);
  return replies[0]!;
}

/** The documented shape, a catalogue code with its status, and nothing echoed back. */
function expectCleanError(reply: RawReply, status: number, code: string): void {
  expectError(reply, status, code);
  expect(Object.values(ERRORS).some((spec) => spec.status === status)).toBe(true);
  expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
  expect(reply.headers.get('cache-control')).toBe('no-store');
  expect(reply.text).not.toContain(SECRET);
  expect(reply.text).not.toContain('token=');
  expect(reply.text).not.toContain('statusCode');
  expect(reply.text).not.toContain('FST_');
}

const big = (n: number) => 'b'.repeat(n);

/** Requests Node's HTTP parser refuses before any request object exists. */
const PARSER_ERRORS: Array<[string, number, string, string]> = [
  [
    'an unknown method',
    400,
    'invalid_request',
    `FOO /users/me?token=${SECRET} HTTP/1.1\r\nHost: x\r\n\r\n`,
  ],
  ['a request line that is not HTTP', 400, 'invalid_request', `garbage ${SECRET}\r\n\r\n`],
  ['an unknown HTTP version', 400, 'invalid_request', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n'],
  [
    'a space in the request target',
    400,
    'invalid_request',
    `GET /a b?token=${SECRET} HTTP/1.1\r\nHost: x\r\n\r\n`,
  ],
  [
    'a space in a header name',
    400,
    'invalid_request',
    `GET /users/me HTTP/1.1\r\nHost: x\r\nAuthori zation: Bearer ${SECRET}\r\n\r\n`,
  ],
  [
    'Content-Length together with Transfer-Encoding: chunked',
    400,
    'invalid_request',
    'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  ],
  [
    'a chunk size that is not hexadecimal',
    400,
    'invalid_request',
    'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  ],
  [
    'headers over 16 KiB',
    431,
    'headers_too_large',
    `GET /users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nX-Big: ${big(20_000)}\r\n\r\n`,
  ],
  [
    'a request line over 16 KiB',
    431,
    'headers_too_large',
    `GET /nope?token=${SECRET}&x=${big(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  ],
  [
    'chunk extensions over 16 KiB',
    413,
    'payload_too_large',
    `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;x=${big(20_000)}\r\n{}\r\n0\r\n\r\n`,
  ],
];

describe('requests that Node’s HTTP parser refuses', () => {
  it.each(PARSER_ERRORS)(
    '%s -> %i %s in the documented shape, then the connection closes',
    async (_label, status, code, bytes) => {
      const reply = await rawOne(server, bytes);
      expectCleanError(reply, status, code);
      expect(reply.headers.get('connection')).toBe('close');
      // The server is unharmed.
      expect((await request(server, 'GET', '/healthz')).status).toBe(200);
    },
  );

  it('answers a request that took too long with 408 request_timeout', async () => {
    // Node raises this after headersTimeout (60 s) on its own timer; the test raises it at once on
    // a connection that has sent half a request.
    const accepted = new Promise<net.Socket>((resolve) =>
      server.app.server.once('connection', resolve),
    );
    const { port } = new URL(server.url);
    const client = net.connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise((resolve) => client.on('close', resolve));
    client.write('GET /users/me HTTP/1.1\r\nHost: x\r\n');
    const socket = await accepted;
    const timeout = Object.assign(new Error('Request timeout'), {
      code: 'ERR_HTTP_REQUEST_TIMEOUT',
    });
    server.app.server.emit('clientError', timeout, socket);
    await closed;
    const replies = parseResponses(Buffer.concat(chunks));
    expect(replies).toHaveLength(1);
    expectCleanError(replies[0]!, 408, 'request_timeout');
  });

  it('answers a pipelined valid request first, then the malformed one after it', async () => {
    const replies = await rawHttp(
      server,
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nFOO / HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(replies.map((r) => r.status)).toEqual([200, 400]);
    expect(replies[0]!.body).toEqual({ status: 'ok' });
    expectCleanError(replies[1]!, 400, 'invalid_request');
  });
});

describe('paths refused before routing', () => {
  it.each([
    ['GET', `/users/%zz?token=${SECRET}`],
    ['GET', `/users/%E0%A4%A?token=${SECRET}`],
    ['DELETE', `/sessions/%?ticket=${SECRET}`],
  ])(
    '%s %s (not valid percent-encoding) -> 400 invalid_request, no URL echoed',
    async (method, url) => {
      const reply = await rawOne(
        server,
        `${method} ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expectCleanError(reply, 400, 'invalid_request');
      expect(reply.text).not.toContain('%');
      expect(reply.body.error.message).not.toContain('/');
    },
  );

  it('a path parameter over 100 characters -> 414 uri_too_long, no URL echoed', async () => {
    const reply = await rawOne(
      server,
      `GET /users/${big(200)}?token=${SECRET} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expectCleanError(reply, 414, 'uri_too_long');
    expect(reply.text).not.toContain(big(10));
  });

  it('a long unknown path: 404 not_found echoes at most 100 characters of it, no query', async () => {
    const r = await request(server, 'GET', `/${big(5000)}?token=${SECRET}`);
    expectError(r, 404, 'not_found');
    expect(r.body.error.message.length).toBeLessThan(150);
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
  });
});

describe('answers Node used to give by itself, without a body', () => {
  it('an HTTP/1.1 request without Host -> 400 invalid_request in the documented shape', async () => {
    const reply = await rawOne(server, 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n');
    expectCleanError(reply, 400, 'invalid_request');
    expect(reply.body.error.message).toMatch(/Host/);
  });

  it('an HTTP/1.0 request without Host is served (Host is an HTTP/1.1 rule)', async () => {
    const reply = await rawOne(server, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: 'ok' });
  });

  it('CONNECT (this is no proxy) -> 404 not_found in the documented shape, not a closed socket', async () => {
    const reply = await rawOne(
      server,
      `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic ${SECRET}\r\n\r\n`,
    );
    expectCleanError(reply, 404, 'not_found');
    expect(reply.text).not.toContain('example.com');
    expect((await request(server, 'GET', '/healthz')).status).toBe(200);
  });

  it('an Expect other than 100-continue is ignored: the request is served, not an empty 417', async () => {
    const ok = await rawOne(
      server,
      'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n',
    );
    expect(ok.status).toBe(200);
    const missing = await rawOne(
      server,
      'GET /nope HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n',
    );
    expectCleanError(missing, 404, 'not_found');
  });
});

describe('Content-Encoding on a request body', () => {
  const body = () => ({ username: uniqueName('enc'), password: PASSWORD });

  it('refuses a gzip body with 415 unsupported_media_type, and stores nothing', async () => {
    const fields = body();
    const res = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(fields)),
    });
    const reply: Reply = { status: res.status, headers: res.headers, body: await res.json() };
    expectError(reply, 415, 'unsupported_media_type');
    expect(reply.body.error.message).toMatch(/Content-Encoding/);
    // Nothing was registered: the same name is still free.
    expect((await request(server, 'POST', '/register', { body: fields })).status).toBe(201);
  });

  it.each(['gzip', 'deflate', 'br', 'x-custom', 'GZIP', 'identity, gzip', 'gzip, identity'])(
    'refuses Content-Encoding: %s on a JSON body (415), on every body route',
    async (coding) => {
      for (const route of ['/register', '/login', '/token/refresh']) {
        const r = await request(server, 'POST', route, {
          raw: JSON.stringify({ ...body(), refreshToken: 'x'.repeat(43) }),
          headers: { 'content-type': 'application/json', 'content-encoding': coding },
        });
        expectError(r, 415, 'unsupported_media_type');
      }
    },
  );

  it.each(['identity', 'Identity', ''])(
    'reads a body with Content-Encoding: %j as usual',
    async (coding) => {
      const r = await request(server, 'POST', '/register', {
        raw: JSON.stringify(body()),
        headers: { 'content-type': 'application/json', 'content-encoding': coding },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    },
  );
});

describe('logs of refused requests', () => {
  it('one line each, with the code; the query string redacted, long URLs cut', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-hostile-logs-'));
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dir, HOST: '127.0.0.1' });
    const store = await openSqliteStore({ file: path.join(dir, 'chat.db') });
    const app = await buildApp({
      config,
      store,
      bus: new MemoryBus(),
      logger: pino(loggerOptions('info'), sink),
      jwtSecret: TEST_SECRET,
    });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      const logged = {
        url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
      };
      for (const [, , , bytes] of PARSER_ERRORS) await rawHttp(logged, bytes);
      const beforeRouting = [
        `GET /users/%zz?token=${SECRET} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET /sessions/%zz?%74oken=${SECRET} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET /users/${big(200)}?ticket=${SECRET}&x=${big(3000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ];
      for (const bytes of beforeRouting) await rawHttp(logged, bytes);
      await request(logged, 'GET', `/nope?token=${SECRET}&x=${big(5000)}`);

      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const parserLines = entries.filter((e) => e.msg === 'malformed request refused');
      expect(parserLines.map((e) => [e.status, e.code])).toEqual(
        PARSER_ERRORS.map(([, status, code]) => [status, code]),
      );
      for (const e of parserLines) expect(e.parserError).toMatch(/^HPE_/);
      const routingLines = entries.filter((e) => e.msg === 'request refused before routing');
      expect(routingLines.map((e) => e.code)).toEqual([
        'invalid_request',
        'invalid_request',
        'uri_too_long',
      ]);
      for (const e of routingLines) expect(e.url).toMatch(/\[REDACTED\]/);

      const all = lines.join('\n');
      expect(all).not.toContain(SECRET);
      // Long URLs are cut: no line carries more than LOGGED_URL_MAX characters of one.
      expect(all).not.toContain(big(LOGGED_URL_MAX));
      expect(all).toMatch(/more characters\]/);
    } finally {
      await app.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
