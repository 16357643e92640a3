// Reconnection delays: "full jitter" exponential backoff, a random delay between zero and a
// ceiling that doubles with each failed attempt, up to a cap. Clients that lost the same server
// at once then spread their reconnections instead of arriving together.

export interface BackoffOptions {
  /** The ceiling of the first retry, in ms (default 500). */
  baseMs?: number;
  /** The largest ceiling, in ms (default 30 000). */
  maxMs?: number;
  /** A number in [0, 1); Math.random by default. */
  random?: () => number;
}

export class Backoff {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  /** Failed attempts since the last success. */
  attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** The ceiling of the next delay. */
  ceiling(): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
  }

  /**
   * The delay before the next attempt, and one more failed attempt counted. A server's
   * `Retry-After` (seconds) is a floor: the client never comes back sooner than it was told to.
   */
  next(retryAfterSeconds?: number): number {
    const jitter = Math.floor(this.random() * this.ceiling());
    this.attempt += 1;
    return retryAfterSeconds === undefined ? jitter : Math.max(retryAfterSeconds * 1000, jitter);
  }

  reset(): void {
    this.attempt = 0;
  }
}
