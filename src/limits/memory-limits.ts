// Limits in this process's memory: exact, for one node (and the fallback of RedisLimits).
import {
  backoffWait,
  type AttemptResult,
  type BucketSpec,
  type Counter,
  type Limits,
  type RateBuckets,
} from './limits.js';
import { TokenBuckets } from './token-bucket.js';

interface Count {
  n: number;
  last: number;
  forgetAt: number;
}

/** Forgotten entries are swept out when a map grows past this, then past twice its size. */
const SWEEP_ABOVE = 10_000;

export class MemoryLimits implements Limits {
  readonly description = 'memory';
  private readonly counts = new Map<string, Count>();
  private readonly marks = new Map<string, number>();
  /** The size that triggers the next sweep: sweeping is amortised O(1) per entry added. */
  private sweepAt = SWEEP_ABOVE;

  constructor(private readonly now: () => number = Date.now) {}

  buckets(_name: string, spec: BucketSpec): RateBuckets {
    return new TokenBuckets(spec.ratePerSec, spec.burst, this.now);
  }

  async attempt(counters: Counter[]): Promise<AttemptResult> {
    return this.attemptNow(counters);
  }

  /** `attempt` without the promise. */
  attemptNow(counters: Counter[]): AttemptResult {
    const now = this.now();
    let wait = 0;
    let refusedBy = -1;
    counters.forEach(({ key, backoff, enforce }, i) => {
      if (!enforce) return;
      const c = this.current(key, now);
      const w = c ? backoffWait(backoff, c.n, now - c.last) : 0;
      if (w > wait) {
        wait = w;
        refusedBy = i;
      }
    });
    if (wait > 0) return { ok: false, retryAfterMs: Math.ceil(wait), refusedBy };
    for (const { key, backoff } of counters) {
      const n = (this.current(key, now)?.n ?? 0) + 1;
      this.counts.set(key, { n, last: now, forgetAt: now + backoff.forgetMs });
    }
    this.maybeSweep(now);
    return { ok: true };
  }

  async forgive(key: string): Promise<void> {
    const c = this.current(key, this.now());
    if (c && c.n > 0) c.n -= 1;
  }

  async reset(key: string): Promise<void> {
    this.counts.delete(key);
  }

  async remember(key: string, ttlMs: number): Promise<void> {
    const now = this.now();
    this.marks.set(key, now + ttlMs);
    this.maybeSweep(now);
  }

  async recall(key: string): Promise<boolean> {
    const until = this.marks.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.marks.delete(key);
    return false;
  }

  async close(): Promise<void> {}

  private current(key: string, now: number): Count | undefined {
    const c = this.counts.get(key);
    if (c && c.forgetAt <= now) {
      this.counts.delete(key);
      return undefined;
    }
    return c;
  }

  private maybeSweep(now: number): void {
    if (this.counts.size + this.marks.size <= this.sweepAt) return;
    for (const [key, c] of this.counts) if (c.forgetAt <= now) this.counts.delete(key);
    for (const [key, until] of this.marks) if (until <= now) this.marks.delete(key);
    this.sweepAt = Math.max(SWEEP_ABOVE, 2 * (this.counts.size + this.marks.size));
  }
}
