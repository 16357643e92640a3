// The one catalogue of error codes. Each entry is mapped once to an HTTP status and, where it can
// end a WebSocket, to a close code. Codes are protocol: stable, documented in docs/protocol.md,
// never reused for another meaning.

interface ErrorSpec {
  /** The wire code; defaults to the catalogue key. */
  code?: string;
  /** The HTTP status of a response carrying this error. */
  status: number;
  message: string;
  /** Sent to a WebSocket client as an `error` frame; the connection stays open. */
  frame?: true;
  /** Ends a WebSocket with this close code; the catalogue key is the close reason. */
  close?: number;
}

export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is invalid' },
  invalid_json: { status: 400, message: 'The body is not valid JSON', frame: true },
  invalid_message: { status: 400, message: 'The frame is not a valid message', frame: true },
  weak_password: { status: 400, message: 'This password is too common; choose another' },
  unauthorized: { status: 401, message: 'A valid access token is required' },
  invalid_credentials: { status: 401, message: 'Username or password is incorrect' },
  invalid_refresh_token: { status: 401, message: 'The refresh token is invalid or expired' },
  session_revoked: { status: 401, message: 'The session was revoked', close: 4001 },
  wrong_current_password: {
    code: 'invalid_credentials',
    status: 403,
    message: 'The current password is incorrect',
  },
  sender_mismatch: {
    status: 403,
    message: 'sender must be the authenticated user',
    frame: true,
  },
  not_message_sender: {
    status: 403,
    message: 'Only the sender may edit or delete a message',
    frame: true,
  },
  not_admin: { status: 403, message: 'Only an admin of the group may do this' },
  forbidden_origin: { status: 403, message: 'This origin is not allowed' },
  forbidden: { status: 403, message: 'Access denied' },
  not_found: { status: 404, message: 'Not found' },
  user_not_found: { status: 404, message: 'No such user' },
  unknown_receiver: { status: 404, message: 'The receiver does not exist', frame: true },
  session_not_found: { status: 404, message: 'No such session' },
  conversation_not_found: {
    status: 404,
    message: 'No such conversation, or the caller is not a member',
    frame: true,
  },
  message_not_found: { status: 404, message: 'No such message', frame: true },
  member_not_found: { status: 404, message: 'No such member of the conversation' },
  request_timeout: { status: 408, message: 'The request took too long to arrive' },
  username_taken: { status: 409, message: 'Username is already registered' },
  last_admin: { status: 409, message: 'A group keeps at least one admin' },
  member_limit: { status: 409, message: 'The group would have more members than allowed' },
  payload_too_large: { status: 413, message: 'The body is too large', close: 1009 },
  uri_too_long: { status: 414, message: 'The request path is too long' },
  unsupported_media_type: { status: 415, message: 'Send application/json' },
  rate_limited: { status: 429, message: 'Too many requests; retry later', frame: true },
  headers_too_large: { status: 431, message: 'The request line and headers are too large' },
  too_many_errors: {
    status: 429,
    message: 'Too many refused frames; fix the client before reconnecting',
    close: 1008,
  },
  internal_error: { status: 500, message: 'Internal server error', frame: true },
  sync_failed: { status: 500, message: 'The replay failed on the server', close: 1011 },
  unavailable: { status: 503, message: 'Service unavailable' },
  send_queue_full: {
    status: 503,
    message: 'The send queue overflowed: the client read too slowly',
    close: 1013,
  },
  server_shutdown: {
    status: 503,
    message: 'The server is shutting down or restarting',
    close: 1001,
  },
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

type Catalogue = typeof ERRORS;

/** Errors sent as WebSocket `error` frames: the `code` union of the protocol's ErrorFrame. */
export type FrameErrorKey = {
  [K in ErrorKey]: Catalogue[K] extends { frame: true } ? K : never;
}[ErrorKey];

/** Errors that end a WebSocket: each has its close code, and its key is the close reason. */
export type CloseKey = {
  [K in ErrorKey]: Catalogue[K] extends { close: number } ? K : never;
}[ErrorKey];

/** The catalogue keys of every WebSocket error frame code, in catalogue order. */
export const FRAME_ERRORS = (Object.keys(ERRORS) as ErrorKey[]).filter(
  (key): key is FrameErrorKey => 'frame' in ERRORS[key],
);

/** The catalogue keys of every close the server sends (or `ws` sends for it: 1009), in order. */
export const CLOSE_ERRORS = (Object.keys(ERRORS) as ErrorKey[]).filter(
  (key): key is CloseKey => 'close' in ERRORS[key],
);

/** The close code of an error that ends a WebSocket. */
export function closeCode(key: CloseKey): number {
  return ERRORS[key].close;
}
