// ChatError: every failure the library reports, with the server's stable error code.
import type { ErrorCode } from './protocol.js';

/**
 * Codes the library adds to the server's: `network_error` (no answer: the server is down or
 * unreachable), `signed_out` (no session, or it ended), `closed` (the client was closed),
 * `invalid_response` (an answer that is not what the API documents), `handshake_refused` (a
 * WebSocket handshake refused with a status the runtime does not show, as in browsers).
 */
export type ClientErrorCode =
  'network_error' | 'signed_out' | 'closed' | 'invalid_response' | 'handshake_refused';

/** A server code, a library code, or a code a newer server may add. */
export type ChatErrorCode = ErrorCode | ClientErrorCode | (string & {});

export interface ChatErrorInit {
  /** The HTTP status of the answer (or of the refused handshake), when there was one. */
  status?: number | undefined;
  /** Seconds to wait before trying again, from `Retry-After`. */
  retryAfter?: number | undefined;
  /** The `clientId` of the frame an `error` frame refused. */
  clientId?: string | undefined;
  cause?: unknown;
}

export class ChatError extends Error {
  override readonly name = 'ChatError';
  /** Match on this, not on `message`. */
  readonly code: ChatErrorCode;
  readonly status: number | undefined;
  readonly retryAfter: number | undefined;
  readonly clientId: string | undefined;

  constructor(code: ChatErrorCode, message: string, init: ChatErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = code;
    this.status = init.status;
    this.retryAfter = init.retryAfter;
    this.clientId = init.clientId;
  }

  /** Whether the same request may succeed later (docs/protocol.md: rate limits, 500, 503, no answer). */
  get retryable(): boolean {
    return ['rate_limited', 'internal_error', 'unavailable', 'network_error'].includes(this.code);
  }
}

/** Seconds from a `Retry-After` value: delta-seconds or an HTTP date. */
export function parseRetryAfter(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}
