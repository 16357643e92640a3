// The one catalogue of error codes. Each entry is mapped once to an HTTP status and, where it can
// end a WebSocket, to a close code. Codes are protocol: stable, documented in docs/protocol.md,
// never reused for another meaning.

interface ErrorSpec {
  /** The wire code; defaults to the catalogue key. */
  code?: string;
  status: number;
  message: string;
  /** WebSocket close code when this error ends a connection. */
  close?: number;
  /** Whether repeating the same request later can succeed. */
  retryable: boolean;
}

export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is invalid', retryable: false },
  invalid_json: { status: 400, message: 'The body is not valid JSON', retryable: false },
  invalid_message: {
    status: 400,
    message: 'The frame is not a valid message',
    close: 1003,
    retryable: false,
  },
  weak_password: {
    status: 400,
    message: 'This password is too common; choose another',
    retryable: false,
  },
  unauthorized: { status: 401, message: 'A valid access token is required', retryable: false },
  invalid_credentials: {
    status: 401,
    message: 'Username or password is incorrect',
    retryable: false,
  },
  invalid_refresh_token: {
    status: 401,
    message: 'The refresh token is invalid or expired',
    retryable: false,
  },
  wrong_current_password: {
    code: 'invalid_credentials',
    status: 403,
    message: 'The current password is incorrect',
    retryable: false,
  },
  sender_mismatch: {
    status: 403,
    message: 'sender must be the authenticated user',
    retryable: false,
  },
  forbidden_origin: { status: 403, message: 'This origin is not allowed', retryable: false },
  forbidden: { status: 403, message: 'Access denied', retryable: false },
  not_found: { status: 404, message: 'Not found', retryable: false },
  user_not_found: { status: 404, message: 'No such user', retryable: false },
  unknown_receiver: { status: 404, message: 'The receiver does not exist', retryable: false },
  session_not_found: { status: 404, message: 'No such session', retryable: false },
  username_taken: { status: 409, message: 'Username is already registered', retryable: false },
  payload_too_large: {
    status: 413,
    message: 'The body is too large',
    close: 1009,
    retryable: false,
  },
  unsupported_media_type: { status: 415, message: 'Send application/json', retryable: false },
  rate_limited: { status: 429, message: 'Too many requests; retry later', retryable: true },
  internal_error: { status: 500, message: 'Internal server error', close: 1011, retryable: true },
  unavailable: { status: 503, message: 'Service unavailable', close: 1001, retryable: true },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorKey = keyof typeof ERRORS;

/** An error the API reports as `{"error": {"code", "message"}}`. */
export class AppError extends Error {
  readonly key: ErrorKey;
  readonly code: string;
  readonly status: number;
  /** Extra headers for the HTTP response (e.g. Retry-After). */
  readonly headers: Record<string, string>;

  constructor(key: ErrorKey, message?: string, headers: Record<string, string> = {}) {
    const spec: ErrorSpec = ERRORS[key];
    super(message ?? spec.message);
    this.key = key;
    this.code = spec.code ?? key;
    this.status = spec.status;
    this.headers = headers;
  }

  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** WebSocket close codes the server uses (see docs/protocol.md for what a client does with each). */
export const CLOSE = {
  /** Server shutting down or restarting: reconnect (elsewhere), then sync. */
  goingAway: 1001,
  /** Binary frame. */
  unsupportedData: 1003,
  /** Frame over 64 KiB. */
  messageTooBig: 1009,
  internalError: 1011,
  /** Send queue overflowed (slow reader): reconnect, then sync. */
  tryAgainLater: 1013,
  /** Session revoked: do not reconnect with this session's tokens. */
  sessionRevoked: 4001,
} as const;
