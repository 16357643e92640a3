// The history of a fault scenario: every send a client attempted (when it was invoked, how it
// ended: ok, a definite error or an unknown outcome, with the server's id and times), and every
// message a client received (live on a WebSocket, in a replay, or over GET /sync). checker.ts
// judges a history against what the server stored.

/** A message as the server shows it (history, sync, `message` frames). */
export interface StoredMessage {
  id: string;
  sender: string;
  receiver: string;
  content: string;
  createdAt: string;
}

/**
 * How one attempt ended:
 * - `ok`: acked, with the server's id;
 * - `fail`: a definite error, after which the message is known not to be stored;
 * - `info`: unknown, it may or may not be stored (the connection dropped before an answer, the
 *   scenario ended first, or an error that does not say, see `Recorder.definite`).
 */
export type Outcome = 'ok' | 'fail' | 'info';

/** One attempt to send a message; retries of one message share its sender and clientId. */
export interface SendAttempt {
  /** Which client (process, in Jepsen's words) attempted it. */
  process: string;
  sender: string;
  receiver: string;
  clientId: string;
  content: string;
  attempt: number;
  invokedAt: number;
  completedAt?: number;
  outcome?: Outcome;
  /** The server's id and createdAt, from the ack. */
  id?: string;
  createdAt?: string;
  /** The error code of a `fail`, or why an `info` is unknown. */
  error?: string;
}

/** How a client got a message. */
export type Via = 'live' | 'replay' | 'http';

export interface Delivery {
  /** The user whose view this is (the username the client is logged in as). */
  user: string;
  /** Which connection of that user (a counter per client), or `http`. */
  connection: string;
  via: Via;
  message: StoredMessage;
  at: number;
}

export interface History {
  sends: SendAttempt[];
  deliveries: Delivery[];
}

/**
 * Error frame codes after which the message is known not to be stored. `internal_error` is not
 * among them by default: on PostgreSQL a connection lost during the commit leaves the outcome
 * unknown to the server itself. A scenario on SQLite, where a failed transaction is rolled back,
 * may count it as definite.
 */
export const DEFINITE_ERRORS = new Set([
  'invalid_json',
  'invalid_message',
  'unknown_receiver',
  'sender_mismatch',
  'rate_limited',
]);

export class Recorder {
  readonly sends: SendAttempt[] = [];
  readonly deliveries: Delivery[] = [];
  private readonly definite: Set<string>;
  private readonly started = performance.now();
  /** Called as each attempt completes (a scenario's trigger: kill at the 200th ack). */
  onComplete: ((a: SendAttempt) => void) | undefined;

  constructor(options: { internalErrorIsDefinite?: boolean } = {}) {
    this.definite = new Set(DEFINITE_ERRORS);
    if (options.internalErrorIsDefinite) this.definite.add('internal_error');
  }

  /** Milliseconds since the recorder was made (monotonic). */
  now(): number {
    return performance.now() - this.started;
  }

  invoke(a: Omit<SendAttempt, 'invokedAt' | 'attempt'>): SendAttempt {
    const attempt = this.sends.filter(
      (s) => s.sender === a.sender && s.clientId === a.clientId,
    ).length;
    const record: SendAttempt = { ...a, attempt: attempt + 1, invokedAt: this.now() };
    this.sends.push(record);
    return record;
  }

  ok(a: SendAttempt, id: string, createdAt: string): void {
    this.complete(a, { outcome: 'ok', id, createdAt });
  }

  /** An error frame: `fail` when its code is definite, else `info`. */
  error(a: SendAttempt, code: string): void {
    this.complete(a, { outcome: this.definite.has(code) ? 'fail' : 'info', error: code });
  }

  unknown(a: SendAttempt, why: string): void {
    this.complete(a, { outcome: 'info', error: why });
  }

  deliver(user: string, connection: string, via: Via, message: StoredMessage): void {
    this.deliveries.push({ user, connection, via, message, at: this.now() });
  }

  /** Attempts still waiting for an answer become unknown; returns the history. */
  finish(): History {
    for (const a of this.sends) if (a.outcome === undefined) this.unknown(a, 'no answer');
    return { sends: this.sends, deliveries: this.deliveries };
  }

  private complete(a: SendAttempt, result: Partial<SendAttempt>): void {
    if (a.outcome !== undefined) return; // the first answer counts
    Object.assign(a, result, { completedAt: this.now() });
    this.onComplete?.(a);
  }
}
