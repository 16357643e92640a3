// One WebSocket, opened with whatever constructor the runtime has: the browser's (and Node 22's)
// global WebSocket, or the `ws` package in Node 20. Its events come out as open / message /
// close; a close before the socket opened is a refused or failed handshake. Browsers do not show
// why a handshake failed; with `ws` the status, Retry-After and error code of the answer are
// read from its 'unexpected-response' event.
import { parseRetryAfter } from './errors.js';

/** A WebSocket class: `globalThis.WebSocket`, or `ws`'s default export in Node 20. */
export type WebSocketConstructor = new (url: string) => unknown;

interface EventTargetSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
}

/** The `ws` package's extras, when present. */
interface NodeSocket {
  on(event: 'unexpected-response', listener: (req: unknown, res: NodeResponse) => void): void;
  terminate(): void;
}
interface NodeResponse {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  setEncoding(encoding: string): void;
  on(event: 'data', listener: (chunk: string) => void): void;
  on(event: 'end' | 'error', listener: () => void): void;
}

/** What a refused handshake said, when the runtime lets us see it. */
export interface Refusal {
  status: number;
  retryAfter?: number | undefined;
  code?: string | undefined;
}

export interface SocketClose {
  code: number;
  reason: string;
  /** Whether the socket had opened; if not, the handshake failed. */
  opened: boolean;
  refusal?: Refusal | undefined;
}

export interface SocketHandlers {
  open(): void;
  message(text: string): void;
  close(info: SocketClose): void;
}

export interface Socket {
  /** Sends a text frame if the socket is open; false if it is not. */
  send(text: string): boolean;
  /** Closes the socket; `close` is still reported. */
  close(code?: number, reason?: string): void;
  /** Drops the socket without waiting for its close handshake; `close` is not reported. */
  abandon(): void;
}

const OPEN = 1;

export function openSocket(
  Ctor: WebSocketConstructor,
  url: string,
  handlers: SocketHandlers,
): Socket {
  const ws = new Ctor(url) as EventTargetSocket & Partial<NodeSocket>;
  let opened = false;
  let done = false;
  let refusal: Refusal | undefined;

  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    handlers.close({ code, reason, opened, refusal });
  };

  ws.addEventListener('open', () => {
    if (done) return;
    opened = true;
    handlers.open();
  });
  ws.addEventListener('message', (event: { data: unknown }) => {
    if (!done && typeof event.data === 'string') handlers.message(event.data);
  });
  ws.addEventListener('close', (event: { code: number; reason: string }) =>
    finish(event.code, event.reason),
  );
  // An error is followed by a close, which reports it.
  ws.addEventListener('error', () => undefined);

  if (typeof ws.on === 'function' && typeof ws.terminate === 'function') {
    const terminate = () => ws.terminate?.();
    ws.on('unexpected-response', (_req, res) => {
      const header = res.headers['retry-after'];
      refusal = {
        status: res.statusCode ?? 0,
        retryAfter: parseRetryAfter(Array.isArray(header) ? header[0] : header),
      };
      let body = '';
      const timer = setTimeout(terminate, 2000);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        if (body.length < 4096) body += chunk;
      });
      res.on('error', terminate);
      res.on('end', () => {
        clearTimeout(timer);
        try {
          const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
          if (refusal && typeof code === 'string') refusal.code = code;
        } catch {
          /* not the documented body */
        }
        terminate();
      });
    });
  }

  return {
    send(text) {
      if (done || ws.readyState !== OPEN) return false;
      ws.send(text);
      return true;
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    abandon() {
      done = true;
      try {
        if (typeof ws.terminate === 'function') ws.terminate();
        else ws.close(4000, 'abandoned');
      } catch {
        /* already closed */
      }
    },
  };
}
