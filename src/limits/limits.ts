// Limits: the counters that rate limits and login throttling keep, behind one seam so that the
// nodes of a deployment can share them. In memory for one process (memory-limits.ts); in Redis
// for several nodes (redis-limits.ts), with a local lease so that a message's token costs no
// round trip. The HTTP limits of @fastify/rate-limit have a Redis store of their own (app.ts).
//
// Guarantees (test/limits/limits.contract.ts checks them on both implementations):
//
// Token buckets (`buckets`): `take` is synchronous and never throws or waits.
// - In memory: exact. Over any interval of t seconds one key gets at most burst + rate·t tokens.
// - In Redis: one bucket per key shared by every node. A node leases tokens from it in chunks of
//   `lease` (a share of the burst, RATE_SHARED_LEASE_PERCENT) and takes them locally; it asks
//   for the next chunk when half of one is left, one request per key at a time, so most takes
//   cost nothing but a map lookup. A node with no leased token left may take up to `lease`
//   more on credit while it asks (the first message of an account on a node needs no wait);
//   the debt is paid from the next chunks before they are used, so the long-run rate is exact.
//   Worst-case overshoot: over any interval of t seconds, one key spread over k nodes gets at
//   most burst + rate·t + 2·k·lease (each node may hold one unused chunk at the start and owe
//   one chunk of credit at the end), instead of k·(burst + rate·t) with a bucket per node: at
//   most 2·k·lease more than the limit. With the defaults (lease 10 % of the burst) that is
//   20·k messages more than 100 + 20·t, and 120·k handshakes more than 600 + 10·t.
//   The other way round, a take can be refused while the shared bucket has tokens: beyond the
//   credit while a lease request is in flight (one round trip; also the first take after a wait
//   when the node still owes a whole lease of credit), and while other nodes hold
//   unused chunks (at most `lease` each; a node hands back the tokens of a key idle there on
//   `sweep`).
// - If Redis cannot be asked, each node counts on its own (a local bucket per key, exact per
//   node) until it answers again: limits loosen to per node, they never stop all traffic.
//
// Attempt counters (`attempt`, `forgive`, `reset`): counts of attempts with growing delays
// (failed logins). `attempt` checks and counts several counters as one atomic step across every
// node: concurrent attempts see each other, so no more than `free` attempts pass a counter
// without waiting, and after that at most one per delay. A refused attempt counts on none of
// them.
//
// Marks (`remember`, `recall`): a key that exists until its time to live ends (a known source).
//
// If Redis cannot be asked, the async operations use the node's own memory instead (logged), so
// logins keep working and stay throttled per node.

/** Token buckets per key: `take` decides at once, on the hot path. */
export interface RateBuckets {
  /** Takes one token for `key`; false when the bucket is empty. Never throws, never waits. */
  take(key: string): boolean;
  /**
   * Forgets state that no longer limits anyone (a bucket that would be full again; an idle
   * lease, whose unused tokens go back); call now and then.
   */
  sweep(): void;
}

export interface BucketSpec {
  /** Tokens per second, refilled continuously. */
  ratePerSec: number;
  /** Tokens at most, and at first. */
  burst: number;
}

/**
 * A growing delay: `free` attempts pass at once; after that an attempt must wait
 * `baseMs · 2^(n − free)` (at most `maxMs`) after the previous one, n being the attempts counted
 * so far. A counter is forgotten `forgetMs` after its last attempt.
 */
export interface Backoff {
  free: number;
  baseMs: number;
  maxMs: number;
  forgetMs: number;
}

export interface Counter {
  key: string;
  backoff: Backoff;
  /** false: the attempt is counted here but this counter cannot refuse it. */
  enforce: boolean;
}

export type AttemptResult =
  | { ok: true }
  | {
      ok: false;
      /** How long until the attempt would pass (the longest wait of the refusing counters). */
      retryAfterMs: number;
      /** The index, in the counters given, of the counter with that wait. */
      refusedBy: number;
    };

export interface Limits {
  /** For logs: `memory` or `redis://host:port`. */
  readonly description: string;
  /** Token buckets under `name` (one namespace per limit), each key its own bucket. */
  buckets(name: string, spec: BucketSpec): RateBuckets;
  /**
   * Counts an attempt on every counter if none of the enforcing ones is waiting; otherwise counts
   * nothing and says how long to wait. Atomic across every node.
   */
  attempt(counters: Counter[]): Promise<AttemptResult>;
  /** Takes one counted attempt back (it turned out not to be a failure). */
  forgive(key: string): Promise<void>;
  /** Forgets a counter. */
  reset(key: string): Promise<void>;
  /** Keeps `key` for `ttlMs` (again: the time to live starts over). */
  remember(key: string, ttlMs: number): Promise<void>;
  /** Whether `key` is remembered. */
  recall(key: string): Promise<boolean>;
  /** Stops timers; a shared connection is not closed (its owner closes it). */
  close(): Promise<void>;
}

/** The wait an attempt needs after `count` counted attempts, the last one `sinceMs` ago. */
export function backoffWait(backoff: Backoff, count: number, sinceMs: number): number {
  if (count < backoff.free) return 0;
  const delay = Math.min(backoff.baseMs * 2 ** (count - backoff.free), backoff.maxMs);
  return Math.max(0, delay - sinceMs);
}
