// JSON over HTTP: one request, its answer parsed, a failure turned into a ChatError carrying the
// server's error code, status and Retry-After.
import { ChatError, parseRetryAfter } from './errors.js';

/** What the library needs of `fetch`: the global one in browsers and Node 18+. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined> | undefined;
  body?: unknown;
  token?: string | undefined;
}

export class Http {
  constructor(
    readonly baseUrl: string,
    private readonly fetchFn: FetchLike,
  ) {}

  url(path: string, query?: HttpRequest['query']): string {
    const params = Object.entries(query ?? {}).filter(
      (entry): entry is [string, string | number] => entry[1] !== undefined,
    );
    const search = params.length
      ? `?${params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`
      : '';
    return `${this.baseUrl.replace(/\/+$/, '')}${path}${search}`;
  }

  /** Resolves with the parsed body (undefined for 204); rejects with a ChatError. */
  async request<T>(req: HttpRequest): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (req.token !== undefined) headers.authorization = `Bearer ${req.token}`;
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    let res: Awaited<ReturnType<FetchLike>>;
    let text: string;
    try {
      res = await this.fetchFn(
        this.url(req.path, req.query),
        body === undefined
          ? { method: req.method, headers }
          : { method: req.method, headers, body },
      );
      text = await res.text();
    } catch (cause) {
      throw new ChatError('network_error', `${req.method} ${req.path}: no answer from the server`, {
        cause,
      });
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof error?.code === 'string' ? error.code : statusCode(res.status);
    const message =
      typeof error?.message === 'string'
        ? error.message
        : `${req.method} ${req.path}: ${res.status}`;
    throw new ChatError(code, message, {
      status: res.status,
      retryAfter: parseRetryAfter(res.headers.get('retry-after')),
    });
  }
}

/** A code for an error answer without the documented body (a proxy's, say). */
export function statusCode(status: number): string {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'internal_error';
  return 'invalid_response';
}
