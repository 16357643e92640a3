// Hostile input, generated (fast-check): HTTP requests written byte by byte (methods, paths, query
// strings, headers, bodies), WebSocket frames (wrong types, huge strings, deep nesting, lone
// surrogates, binary, prototype keys, every frame type with wrong field types) and forged tokens,
// all thrown at a real server on port 0. Whatever comes in: never a 5xx, never a stack trace or
// SQL text in an answer, every error in the documented shape with a code of the catalogue, and a
// well-behaved pair of clients keeps sending, getting acks and receiving throughout.
//
// Reproducible: every property runs with HOSTILE_SEED (default below) and HOSTILE_RUNS runs (a
// bounded default, and a time limit each); a failure prints fast-check's seed and path.
import net from 'node:net';
import fc from 'fast-check';
import { SignJWT, decodeJwt } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, FRAME_ERRORS } from '../../src/errors.js';
import { MAX_PAYLOAD_BYTES } from '../../src/protocol/message.js';
import {
  account,
  connect,
  startServer,
  type Account,
  type Client,
  type TestServer,
} from '../helpers/server.js';
import { ISSUER, TEST_SECRET } from '../http/support.js';

const SEED = Number(process.env.HOSTILE_SEED ?? 20_251_128);
const RUNS = Number(process.env.HOSTILE_RUNS ?? 60);
/** Each property stops (and passes with what it ran) after this long: the machine is busy. */
const TIME_LIMIT_MS = Number(process.env.HOSTILE_TIME_MS ?? 6_000);
const params = (numRuns = RUNS) => ({
  seed: SEED,
  numRuns,
  interruptAfterTimeLimit: TIME_LIMIT_MS,
  markInterruptAsFailure: false,
});

let server: TestServer;
let victim: Account;
let alice: Account;
let bob: Account;

/** Text that must never reach a client: stack frames, source paths, SQL and its errors. */
const LEAKS =
  /\n\s+at |\bat [\w.<>$]+ \(|\.ts:\d|\.js:\d|node:internal|node_modules|SQLITE|\bSELECT\b|\bINSERT\b|\bUPDATE\b|syntax error|FST_ERR|statusCode/;

/** `code:status` of every catalogue entry. */
const CATALOGUE = new Set(
  Object.entries(ERRORS).map(
    ([key, spec]) => `${'code' in spec ? spec.code : key}:${String(spec.status)}`,
  ),
);

// ---- The well-behaved pair: alice sends to bob all along, every message acked and delivered ----

class Flow {
  private timer?: NodeJS.Timeout;
  private sent = 0;
  constructor(
    private readonly a: Client,
    private readonly b: Client,
    private readonly to: string,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.a.send({ receiver: this.to, content: `flow ${this.sent}`, clientId: `f-${this.sent}` });
      this.sent += 1;
    }, 15);
  }

  /** Stops sending; resolves with how many were sent once all are acked and delivered, in order. */
  async finish(): Promise<number> {
    clearInterval(this.timer);
    const acks = [];
    for (let i = 0; i < this.sent; i++) acks.push(await this.a.next((f) => f.type === 'ack'));
    expect(acks.map((f) => f.clientId)).toEqual(
      Array.from({ length: this.sent }, (_, i) => `f-${i}`),
    );
    const got = [];
    for (let i = 0; i < this.sent; i++) got.push(await this.b.next((f) => f.type === 'message'));
    expect(got.map((f) => f.content)).toEqual(
      Array.from({ length: this.sent }, (_, i) => `flow ${i}`),
    );
    expect(got.map((f) => f.id)).toEqual(acks.map((f) => f.id));
    expect(this.a.frames.filter((f) => f.type === 'error')).toEqual([]);
    return this.sent;
  }
}

let flow: Flow;
let flowClients: Client[] = [];

beforeAll(async () => {
  const many = '10000000';
  server = await startServer({
    RATE_REGISTER_PER_MIN: '1000000',
    RATE_LOGIN_PER_MIN: '1000000',
    RATE_API_PER_MIN: many,
    RATE_WS_HANDSHAKES_PER_MIN: many,
    RATE_MESSAGES_PER_SEC: '1000000',
    RATE_MESSAGES_BURST: '1000000',
    // The generated frames are all mistakes: here each must be answered, not cut off by the
    // budget (flood.test.ts tests the budget).
    RATE_WS_ERRORS_PER_MIN: '1000000',
  });
  [victim, alice, bob] = await Promise.all([account(server), account(server), account(server)]);
  const [a, b] = await Promise.all([
    connect(server, { token: alice.token }),
    connect(server, { token: bob.token }),
  ]);
  flowClients = [a, b];
  flow = new Flow(a, b, bob.username);
  flow.start();
});

afterAll(async () => {
  for (const c of flowClients) c.close();
  await server?.close();
});

// ---- Raw HTTP ----

interface RawReply {
  status: number;
  head: string;
  body: string;
}

/** Writes one request on a new connection and reads the first response until the server closes. */
function rawRequest(bytes: Buffer, ms = 5000): Promise<RawReply> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return reject(new Error(`no response: ${JSON.stringify(data.toString())}`));
      const head = data.subarray(0, end).toString('latin1');
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
      const rest = data.subarray(end + 4);
      const body = (length === undefined ? rest : rest.subarray(0, Number(length))).toString();
      resolve({ status: Number(head.split(' ')[1]), head, body });
    };
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A WebSocket that opened: enough seen.
      if (Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 101')) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', done);
    socket.write(bytes);
  });
}

function buildRequest(
  method: string,
  target: string,
  headers: Array<[string, string]>,
  body?: Buffer,
  connection = 'close',
): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', `Connection: ${connection}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  if (body !== undefined) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([
    Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'),
    body ?? Buffer.alloc(0),
  ]);
}

/** Never a 5xx, nothing leaked, every error in the documented shape with a catalogue code. */
function checkReply(r: RawReply): void {
  const all = `${r.head}\r\n\r\n${r.body}`;
  expect(r.status, all).toBeGreaterThanOrEqual(100);
  expect(r.status, all).toBeLessThan(500);
  expect(all).not.toMatch(LEAKS);
  if (r.status < 400) return;
  expect(r.head.toLowerCase()).toContain('content-type: application/json; charset=utf-8');
  const body = JSON.parse(r.body) as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.message).toBeTypeOf('string');
  expect(CATALOGUE.has(`${body.error.code}:${r.status}`), all).toBe(true);
}

// ---- Generators ----

/** Strings that stress text handling: any code units (lone surrogates), long ones, odd bytes. */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
  fc.constantFrom("' OR 1=1 --", '"; DROP TABLE users; --', '\u0000', '%00', '../../etc/passwd'),
  fc.integer({ min: 1, max: 70_000 }).map((n) => 'x'.repeat(n)),
);

/** A JSON value of any type, sometimes holding the nasty strings. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: nastyString },
  fc.constantFrom(null, true, false, 0, -1, 1e308, 2 ** 53 + 1, [], {}, ''),
);

/** JSON text of an object with these keys (prototype keys kept as written, not as setters). */
function objectText(entries: Array<[string, unknown]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;
}

const FIELDS = [
  'type',
  'sender',
  'receiver',
  'conversationId',
  'with',
  'content',
  'clientId',
  'after',
  'id',
  'upTo',
  'username',
  'password',
  'currentPassword',
  'newPassword',
  'refreshToken',
  'title',
  'members',
  'role',
  '__proto__',
  'constructor',
  'prototype',
];
const fieldEntries = fc.array(fc.tuple(fc.constantFrom(...FIELDS), anyValue), { maxLength: 6 });

/** Deeply nested JSON text, optionally with an escaped lone surrogate at the bottom. */
const deep = fc
  .tuple(fc.integer({ min: 100, max: 20_000 }), fc.boolean(), fc.boolean())
  .map(([n, arrays, surrogate]) => {
    const leaf = surrogate ? '"\\ud800"' : '1';
    return arrays
      ? `${'['.repeat(n)}${leaf}${']'.repeat(n)}`
      : `${'{"a":'.repeat(n)}${leaf}${'}'.repeat(n)}`;
  });

/** A request body as bytes. */
const bodyBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fieldEntries.map((e) => Buffer.from(objectText(e))),
  anyValue.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  deep.map((t) => Buffer.from(t)),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc
    .constantFrom('{"username":"\\ud800x","password":"\\udc00\\udc00\\udc00\\udc00"}', '{', '')
    .map((t) => Buffer.from(t)),
  fc.constantFrom(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), Buffer.from([0xc0, 0xaf])),
);

const ROUTES: Array<[string, string]> = [
  ['POST', '/register'],
  ['POST', '/login'],
  ['POST', '/token/refresh'],
  ['POST', '/logout'],
  ['GET', '/users/me'],
  ['GET', '/users'],
  ['GET', '/users/{x}'],
  ['POST', '/users/me/password'],
  ['GET', '/users/me/settings'],
  ['PATCH', '/users/me/settings'],
  ['POST', '/users/{x}/block'],
  ['GET', '/messages'],
  ['GET', '/sync'],
  ['GET', '/sessions'],
  ['DELETE', '/sessions/{x}'],
  ['GET', '/conversations'],
  ['POST', '/conversations'],
  ['GET', '/conversations/{x}'],
  ['PATCH', '/conversations/{x}'],
  ['GET', '/conversations/{x}/messages'],
  ['POST', '/conversations/{x}/members'],
  ['PATCH', '/conversations/{x}/members/{x}'],
  ['POST', '/websocket/ticket'],
  ['GET', '/healthz'],
  ['GET', '/{x}'],
];

/** A URL path piece: percent-encoded anything, or raw junk with bad escapes. */
const segment = fc.oneof(
  nastyString.map((s) => encodeURIComponent(s.isWellFormed() ? s.slice(0, 300) : 'x')),
  fc.constantFrom(
    '%zz',
    '%ff',
    '%ED%A0%80',
    '%',
    '..',
    '%2e%2e',
    '~',
    '1',
    '0',
    '-1',
    '99999999999999999999',
  ),
  fc.string({ unit: fc.constantFrom(..."abc%09AF/._~!$&'()*+,;=:@".split('')), maxLength: 30 }),
);

const query = fc
  .array(
    fc.tuple(
      fc.constantFrom('q', 'limit', 'before', 'after', 'with', 'token', 'ticket', '__proto__', 'x'),
      segment,
    ),
    {
      maxLength: 4,
    },
  )
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

/** Header values without CR, LF or NUL (those would split the request this test writes). */
const headerValue = fc
  .string({ unit: 'binary-ascii', maxLength: 60 })
  .map((s) => s.replace(/[\r\n\0]/g, ''));

const headers = fc.array(
  fc.oneof(
    fc.tuple(
      fc.constantFrom('Content-Type'),
      fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'application/json; charset=latin1',
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          '',
        ),
        headerValue,
      ),
    ),
    fc.tuple(fc.constantFrom('Content-Encoding'), fc.constantFrom('gzip', 'br', 'identity', 'x')),
    fc.tuple(fc.constantFrom('Authorization'), fc.oneof(headerValue, fc.constant('Bearer '))),
    fc.tuple(
      fc.constantFrom('Origin', 'X-Forwarded-For', 'Cookie', 'Accept', 'Expect'),
      headerValue,
    ),
    fc.tuple(
      fc.string({ unit: fc.constantFrom(...'abcXYZ-_!#'.split('')), minLength: 1, maxLength: 20 }),
      headerValue,
    ),
  ),
  { maxLength: 5 },
);

describe('generated HTTP requests', () => {
  it('never get a 5xx, a leak or an error outside the catalogue', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        fc.array(segment, { minLength: 2, maxLength: 2 }),
        query,
        headers,
        fc.option(bodyBytes, { nil: undefined }),
        fc.boolean(),
        fc.option(fc.constantFrom('FOO', 'get', 'TRACE', 'OPTIONS', 'PUT', 'HEAD'), {
          nil: undefined,
        }),
        async ([method, route], [s1, s2], q, hs, body, authed, otherMethod) => {
          let i = 0;
          const path = route.replace(/\{x\}/g, () => (i++ === 0 ? s1! : s2!));
          const all: Array<[string, string]> = authed
            ? [['Authorization', `Bearer ${victim.token}`], ...hs]
            : hs;
          const reply = await rawRequest(buildRequest(otherMethod ?? method, path + q, all, body));
          if ((otherMethod ?? method) === 'HEAD') expect(reply.status).toBeLessThan(500);
          else checkReply(reply);
        },
      ),
      params(),
    );
  });
});

// ---- Tokens ----

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Forged or damaged access tokens, as [kind, argument]: none may authenticate. */
function forgedTokens(valid: string): fc.Arbitrary<[string, string]> {
  const REQUIRED = ['exp', 'iat', 'iss', 'sub', 'sid'];
  const pair = (kind: string, arg = '') => fc.constant<[string, string]>([kind, arg]);
  return fc.oneof(
    pair('alg none'),
    fc.constantFrom('HS384', 'HS512').map((alg): [string, string] => ['other alg', alg]),
    pair('wrong key'),
    fc
      .integer({ min: 1, max: valid.length - 1 })
      .map((n): [string, string] => ['truncated', String(n)]),
    fc.subarray(REQUIRED, { minLength: 1 }).map((m): [string, string] => ['missing', m.join(',')]),
    pair('expired'),
    pair('issuer'),
    pair('tampered'),
    pair('rs256'),
    headerValue.map((v): [string, string] => ['garbage', v]),
  );
}

/** Turns a generated description into a token (signing is async). */
async function makeToken(valid: string, kind: string, arg: string): Promise<string> {
  const claims = decodeJwt(valid);
  const now = Math.floor(Date.now() / 1000);
  const sign = (payload: Record<string, unknown>, alg = 'HS256', key = TEST_SECRET) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg, typ: 'JWT' })
      .sign(new TextEncoder().encode(key));
  switch (kind) {
    case 'alg none':
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    case 'other alg':
      return sign(claims, arg, `${TEST_SECRET}${TEST_SECRET}`.slice(0, 64));
    case 'truncated':
      return valid.slice(0, Number(arg));
    case 'wrong key':
      return sign(claims, 'HS256', 'another-secret-that-is-at-least-32-chars');
    case 'missing': {
      const c: Record<string, unknown> = { ...claims };
      for (const k of arg.split(',')) delete c[k];
      return sign(c);
    }
    case 'expired':
      return sign({ ...claims, iat: now - 3600, exp: now - 60 });
    case 'issuer':
      return sign({ ...claims, iss: 'someone-else' });
    case 'tampered': {
      const [h, , s] = valid.split('.');
      return `${h}.${b64({ ...claims, sub: `${claims.sub}0` })}.${s}`;
    }
    case 'rs256': {
      const [, p, s] = valid.split('.');
      return `${b64({ alg: 'RS256', typ: 'JWT' })}.${p}.${s}`;
    }
    default:
      return arg;
  }
}

describe('forged and damaged tokens', () => {
  it('get 401 in the documented shape over HTTP and at the handshake, never more', async () => {
    expect(ISSUER).toBe(decodeJwt(victim.token).iss);
    await fc.assert(
      fc.asyncProperty(forgedTokens(victim.token), async ([kind, arg]) => {
        const token = await makeToken(victim.token, kind, arg);
        const http = await rawRequest(
          buildRequest('GET', '/users/me', [['Authorization', `Bearer ${token}`]]),
        );
        checkReply(http);
        // A control character makes the header itself invalid HTTP: Node's parser refuses it.
        const invalidHeader = [...token].some((c) => (c < ' ' && c !== '\t') || c === '\x7f');
        expect(http.status, `${kind}: ${token}`).toBe(invalidHeader ? 400 : 401);
        const handshake = (target: string, extra: Array<[string, string]>) =>
          rawRequest(
            buildRequest(
              'GET',
              target,
              [
                ['Upgrade', 'websocket'],
                ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
                ['Sec-WebSocket-Version', '13'],
                ...extra,
              ],
              undefined,
              'Upgrade',
            ),
          );
        const viaHeader = await handshake('/websocket', [['Authorization', `Bearer ${token}`]]);
        const viaQuery = await handshake(`/websocket?token=${encodeURIComponent(token)}`, []);
        checkReply(viaHeader);
        checkReply(viaQuery);
        expect(viaHeader.status, `${kind}: ${token}`).toBe(invalidHeader ? 400 : 401);
        expect(viaQuery.status, `${kind}: ${token}`).toBe(401);
      }),
      params(40),
    );
  });
});

// ---- WebSocket frames ----

const TYPES = ['message', 'sync', 'ping', 'edit', 'delete', 'read', 'typing'];

/** One frame as sent: text (JSON or not) or binary bytes. */
const frame: fc.Arbitrary<{ data: string | Buffer; binary: boolean }> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.option(fc.constantFrom(...TYPES), { nil: undefined }), fieldEntries)
      .map(([type, entries]) => ({
        data: objectText(type === undefined ? entries : [['type', type], ...entries]),
        binary: false,
      })),
  },
  // Every frame type with a wrong type in each of its fields.
  fc
    .tuple(
      fc.constantFrom(...TYPES),
      fc.constantFrom(
        'content',
        'receiver',
        'conversationId',
        'with',
        'after',
        'id',
        'upTo',
        'clientId',
        'sender',
      ),
      anyValue,
    )
    .map(([type, field, value]) => ({
      data: objectText([
        ['type', type],
        ['content', 'ok'],
        ['receiver', 'nobody'],
        [field, value],
      ]),
      binary: false,
    })),
  fc
    .constantFrom(...TYPES)
    .map((type) => ({ data: `{"type":${JSON.stringify(type)}}`, binary: false })),
  anyValue.map((v) => ({ data: JSON.stringify(v) ?? 'null', binary: false })),
  deep.map((t) => ({ data: t, binary: false })),
  fc.string({ maxLength: 100 }).map((t) => ({ data: t, binary: false })),
  fc.uint8Array({ maxLength: 100 }).map((a) => ({ data: Buffer.from(a), binary: true })),
  fc
    .constantFrom(
      '{"receiver":"x","content":"\\ud800"}',
      '{"\\udfff":1,"content":"a"}',
      '{"type":"message","__proto__":{"type":"ping"},"content":"x"}',
      '{"type":"sync","constructor":{"prototype":{"polluted":1}}}',
      '{"type":"ping","type":"message"}',
    )
    .map((t) => ({ data: t, binary: false })),
);

/** A raw WebSocket for the fuzzing user, recording every frame's text. */
async function rawSocket(token: string): Promise<{ ws: WebSocket; texts: string[] }> {
  const ws = new WebSocket(server.wsUrl, { headers: { authorization: `Bearer ${token}` } });
  const texts: string[] = [];
  ws.on('message', (data) => texts.push(data.toString()));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, texts };
}

/** Every server frame: JSON, no leak, errors with a frame code of the catalogue. */
function checkFrames(texts: string[]): void {
  for (const text of texts) {
    expect(text).not.toMatch(LEAKS);
    const f = JSON.parse(text) as { type: string; code?: string; message?: string };
    if (f.type !== 'error') continue;
    expect(FRAME_ERRORS as string[], text).toContain(f.code);
    expect(f.code, text).not.toBe('internal_error');
    expect(f.message).toBeTypeOf('string');
  }
}

describe('generated WebSocket frames', () => {
  it('are answered (an error frame, or what the frame asks), never with a close or a leak', async () => {
    const fuzzer = await account(server);
    let socket = await rawSocket(fuzzer.token);
    const texts: string[] = [];
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 5 }), async (frames) => {
        if (socket.ws.readyState !== WebSocket.OPEN) socket = await rawSocket(fuzzer.token);
        const { ws } = socket;
        let onClose: (code: number) => void = () => {};
        let onMessage: (data: Buffer) => void = () => {};
        const closed = new Promise<number>((resolve) => (onClose = resolve));
        const pong = new Promise<void>(
          (resolve) =>
            (onMessage = (data) => {
              if (data.toString() === '{"type":"pong"}') resolve();
            }),
        );
        ws.on('close', onClose);
        ws.on('message', onMessage);
        const tooBig = frames.findIndex((f) => Buffer.byteLength(f.data) > MAX_PAYLOAD_BYTES);
        for (const f of tooBig === -1 ? frames : frames.slice(0, tooBig + 1))
          ws.send(f.data, { binary: f.binary });
        if (tooBig !== -1) {
          // Documented: a frame over 64 KiB closes the connection with 1009.
          expect(await closed).toBe(1009);
        } else {
          // A ping after them: its pong comes after they were all read.
          ws.send('{"type":"ping"}');
          const outcome = await Promise.race([
            pong.then(() => 'pong'),
            closed.then((code) => `closed ${code}`),
            new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000)),
          ]);
          expect(outcome).toBe('pong');
        }
        ws.off('close', onClose);
        ws.off('message', onMessage);
        texts.push(...socket.texts.splice(0));
        checkFrames(texts);
      }),
      params(),
    );
    // Answers decided at storage time arrive late: check them too.
    await new Promise((resolve) => setTimeout(resolve, 200));
    checkFrames([...texts, ...socket.texts]);
    socket.ws.close();
  });

  it('a text frame that is not UTF-8 closes that connection with 1007, the others go on', async () => {
    const fuzzer = await account(server);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          Buffer.from([0xff]),
          Buffer.from([0xc0, 0xaf]),
          Buffer.from([0xed, 0xa0, 0x80]),
          Buffer.from('{"content":"\xff"}', 'latin1'),
        ),
        async (bytes) => {
          const { ws } = await rawSocket(fuzzer.token);
          const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
          ws.send(bytes, { binary: false });
          expect(await closed).toBe(1007);
        },
      ),
      params(8),
    );
  });
});

describe('the well-behaved clients', () => {
  it('got every message acked and delivered, in order, throughout', async () => {
    const sent = await flow.finish();
    expect(sent).toBeGreaterThan(0);
    // The server still answers.
    checkReply(await rawRequest(buildRequest('GET', '/healthz', [])));
  });
});
