// The WebSocket handshake: every way to authenticate, every refusal.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  account,
  connect,
  request,
  startServer,
  type Account,
  type TestServer,
} from '../helpers/server.js';

let server: TestServer;
let alice: Account;

beforeAll(async () => {
  server = await startServer({ CORS_ORIGINS: 'https://app.example.com' });
  alice = await account(server);
});
afterAll(() => server.close());

const refused = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('handshake was accepted');
    },
    (e: { status?: number; headers?: Record<string, string> }) => e,
  );

describe('WebSocket handshake', () => {
  it('accepts a Bearer header', async () => {
    const c = await connect(server, { token: alice.token });
    c.close();
  });

  it('accepts ?token=', async () => {
    const c = await connect(server, { query: `token=${encodeURIComponent(alice.token)}` });
    c.close();
  });

  it('accepts a ticket once, and only once even under a race', async () => {
    const { body } = await request(server, 'POST', '/websocket/ticket', { token: alice.token });
    expect(body.expiresIn).toBe(30);
    const results = await Promise.allSettled([
      connect(server, { query: `ticket=${body.ticket}` }),
      connect(server, { query: `ticket=${body.ticket}` }),
      connect(server, { query: `ticket=${body.ticket}` }),
    ]);
    const opened = results.filter((r) => r.status === 'fulfilled');
    expect(opened).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'fulfilled') r.value.close();
      else expect((r.reason as { status: number }).status).toBe(401);
    }
    const again = await refused(connect(server, { query: `ticket=${body.ticket}` }));
    expect(again.status).toBe(401);
  });

  it('refuses without credentials, with a bad token and with a bad ticket: 401 and WWW-Authenticate', async () => {
    for (const options of [
      {},
      { token: 'not-a-jwt' },
      { query: 'ticket=nope' },
      { query: 'token=abc' },
    ]) {
      const e = await refused(connect(server, options));
      expect(e.status).toBe(401);
      expect(e.headers?.['www-authenticate']).toBe('Bearer');
    }
  });

  it('refuses a revoked session', async () => {
    const bob = await account(server);
    await request(server, 'POST', '/logout', { token: bob.token });
    expect((await refused(connect(server, { token: bob.token }))).status).toBe(401);
  });

  it('refuses a foreign Origin with 403; accepts its own origin and allow-listed ones', async () => {
    const foreign = await refused(
      connect(server, { token: alice.token, headers: { origin: 'https://evil.example' } }),
    );
    expect(foreign.status).toBe(403);
    const own = await connect(server, { token: alice.token, headers: { origin: server.url } });
    own.close();
    const listed = await connect(server, {
      token: alice.token,
      headers: { origin: 'https://app.example.com' },
    });
    listed.close();
  });

  it('refuses a malformed ?after= with 400', async () => {
    expect(
      (await refused(connect(server, { token: alice.token, query: 'after=abc' }))).status,
    ).toBe(400);
  });

  it('limits handshakes per client address: 429 with Retry-After', async () => {
    const limited = await startServer({ RATE_WS_HANDSHAKES_PER_MIN: '3' });
    try {
      const x = await account(limited);
      for (let i = 0; i < 3; i++) (await connect(limited, { token: x.token })).close();
      const e = await refused(connect(limited, { token: x.token }));
      expect(e.status).toBe(429);
      expect(Number(e.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    } finally {
      await limited.close();
    }
  });

  it('authenticates WS_HANDSHAKE_CONCURRENCY handshakes at once; the others wait their turn, and a refusal frees its slot', async () => {
    const narrow = await startServer({ WS_HANDSHAKE_CONCURRENCY: '2' });
    try {
      const x = await account(narrow);
      const results = await Promise.allSettled([
        ...Array.from({ length: 4 }, () => connect(narrow, { token: 'not-a-jwt' })),
        ...Array.from({ length: 20 }, () => connect(narrow, { token: x.token })),
      ]);
      const opened = results.filter((r) => r.status === 'fulfilled');
      expect(opened).toHaveLength(20);
      for (const r of results) {
        if (r.status === 'fulfilled') r.value.close();
        else expect((r.reason as { status: number }).status).toBe(401);
      }
      // No slot was kept by a refused or finished handshake.
      const again = await Promise.all(
        Array.from({ length: 3 }, () => connect(narrow, { token: x.token })),
      );
      for (const c of again) c.close();
    } finally {
      await narrow.close();
    }
  });

  it('answers 404 for an upgrade on another path', async () => {
    const e = await refused(
      connect({ wsUrl: server.url.replace('http', 'ws') + '/nope' }, { token: alice.token }),
    );
    expect(e.status).toBe(404);
  });

  it('shows presence: online while a WebSocket is open', async () => {
    const bob = await account(server);
    const before = await request(server, 'GET', `/users/${bob.username}`, { token: alice.token });
    expect(before.body.online).toBe(false);
    const c = await connect(server, { token: bob.token });
    const during = await request(server, 'GET', `/users/${bob.username.toUpperCase()}`, {
      token: alice.token,
    });
    expect(during.body.online).toBe(true);
    c.close();
    await c.closed;
    // The server sees the close a moment after the client does: poll, bounded.
    let online = true;
    for (let i = 0; i < 100 && online; i++) {
      await new Promise((r) => setTimeout(r, 20));
      online = (await request(server, 'GET', `/users/${bob.username}`, { token: alice.token })).body
        .online;
    }
    expect(online).toBe(false);
  });
});

describe('malformed upgrade requests', () => {
  /** Sends a raw upgrade request and returns the status line, headers and body. */
  const raw = (headers: Record<string, string>, method = 'GET') =>
    new Promise<{ status: number; head: string; body: string }>((resolve, reject) => {
      const { port } = new URL(server.url);
      const socket = net.connect(Number(port), '127.0.0.1');
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk.toString();
        // An accepted upgrade stays open: its status line is all this test needs.
        if (data.startsWith('HTTP/1.1 101')) socket.destroy();
      });
      socket.on('error', reject);
      socket.on('close', () => {
        const [head = '', body = ''] = data.split('\r\n\r\n');
        resolve({ status: Number(head.split(' ')[1]), head, body });
      });
      const lines = Object.entries({
        Host: `127.0.0.1:${port}`,
        Connection: 'Upgrade',
        Authorization: `Bearer ${alice.token}`,
        ...headers,
      }).map(([k, v]) => `${k}: ${v}`);
      socket.write(`${method} /websocket HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    });
  const good = {
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
  };

  it.each([
    ['a wrong version', { ...good, 'Sec-WebSocket-Version': '7' }],
    ['no key', { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' }],
    ['a malformed key', { ...good, 'Sec-WebSocket-Key': 'not a key' }],
    ['a malformed subprotocol list', { ...good, 'Sec-WebSocket-Protocol': 'a b,,' }],
  ])('refuses %s with 400 invalid_request in the documented shape', async (_name, headers) => {
    const res = await raw(headers);
    expect(res.status).toBe(400);
    expect(res.head).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'invalid_request' } });
  });

  it('still accepts a well-formed one', async () => {
    const res = await raw(good);
    expect(res.status).toBe(101);
  });
});
