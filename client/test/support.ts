// Helpers for the client library's tests: clients of a real server (test/helpers/server.ts)
// with the `ws` package as their WebSocket, event recorders, and waiting for a condition.
import WebSocket from 'ws';
import { ChatClient, type ChatClientOptions, type ChatEvents } from '../src/index.js';
import { PASSWORD, uniqueName } from '../../test/helpers/server.js';

export { PASSWORD, uniqueName };

/** A client of `server` with fast reconnection, unless `options` say otherwise. */
export function client(
  server: { url: string },
  options: Partial<ChatClientOptions> = {},
): ChatClient {
  return new ChatClient({
    baseUrl: server.url,
    WebSocket,
    backoff: { baseMs: 20, maxMs: 200 },
    ...options,
  });
}

/** Registers a new user with `c` and signs in. */
export async function signUp(c: ChatClient, name = uniqueName()): Promise<string> {
  await c.register(name, PASSWORD);
  await c.login(name, PASSWORD);
  return name;
}

/** Records every event of `c` by name, in order. */
export function record(c: ChatClient) {
  const events: Array<{ name: keyof ChatEvents; value: unknown }> = [];
  const names: Array<keyof ChatEvents> = [
    'stream',
    'message',
    'edit',
    'delete',
    'conversation',
    'receipt',
    'typing',
    'presence',
    'synced',
    'state',
    'sent',
    'failed',
    'signedIn',
    'signedOut',
    'refreshed',
    'error',
  ];
  for (const name of names) c.on(name, (value) => events.push({ name, value }));
  return {
    events,
    of<K extends keyof ChatEvents>(name: K): Array<ChatEvents[K]> {
      return events.filter((e) => e.name === name).map((e) => e.value as ChatEvents[K]);
    },
  };
}

/** Resolves once `condition` holds (checked every 10 ms); fails after `ms`. */
export async function until(
  condition: () => boolean,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The next `state` of `c` with that status (the current one if it already has it). */
export function reach(c: ChatClient, status: string, ms = 5000): Promise<void> {
  if (c.state.status === status) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no state ${status} within ${ms} ms (now ${c.state.status})`));
    }, ms);
    const off = c.on('state', (s) => {
      if (s.status !== status) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A fetch that records each request's path and can hold WebSocket ticket requests: a client
 * whose ticket is held stays offline until `release()`, whatever its backoff.
 */
export function gatedFetch() {
  const paths: string[] = [];
  let gate: Promise<void> | undefined;
  let open: () => void = () => undefined;
  const fetchFn = async (url: string, init: RequestInit) => {
    const path = new URL(url).pathname;
    paths.push(path);
    if (path === '/websocket/ticket') await gate;
    return fetch(url, init);
  };
  return {
    fetch: fetchFn,
    paths,
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      open();
      gate = undefined;
    },
  };
}

/**
 * The `ws` WebSocket class with a hand on every socket it opens: records the frames sent, can
 * drop incoming acks (a connection that fails between storing and acking), and can rewrite the
 * URL or add headers to the handshake.
 */
export function instrumentedWebSocket(
  options: { url?: (url: string) => string; headers?: Record<string, string> } = {},
) {
  const sockets: WebSocket[] = [];
  const sent: any[] = [];
  const control = { dropAcks: false };
  class Instrumented extends WebSocket {
    constructor(url: string) {
      super(options.url ? options.url(url) : url, { headers: options.headers ?? {} });
      sockets.push(this);
    }
    override send(data: any, cb?: any): void {
      sent.push(JSON.parse(String(data)));
      super.send(data, cb);
    }
    override addEventListener(type: any, listener: any, opts?: any): void {
      if (type !== 'message') return super.addEventListener(type, listener, opts);
      super.addEventListener(
        'message',
        (event: any) => {
          if (control.dropAcks && JSON.parse(String(event.data)).type === 'ack') return;
          listener(event);
        },
        opts,
      );
    }
  }
  return { WebSocket: Instrumented, sockets, sent, control };
}

/**
 * A WebSocket as browsers have it: EventTarget events only, so a refused handshake shows as a
 * close (1006) before open, its status unknown.
 */
export function browserLikeWebSocket(headers: Record<string, string> = {}) {
  return class BrowserLike {
    private readonly ws: WebSocket;
    constructor(url: string) {
      this.ws = new WebSocket(url, { headers });
    }
    get readyState(): number {
      return this.ws.readyState;
    }
    send(data: string): void {
      this.ws.send(data);
    }
    close(code?: number, reason?: string): void {
      this.ws.close(code, reason);
    }
    addEventListener(type: any, listener: any): void {
      this.ws.addEventListener(type, listener);
    }
  };
}
