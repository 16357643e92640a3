// Token buckets per key (messages per account): `ratePerSec` sustained, `burst` at once. Exact,
// in this process: the in-memory RateBuckets (limits.ts).
import type { RateBuckets } from './limits.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets implements RateBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSec);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /**
   * Drops buckets that have refilled completely: a full bucket is what a new key gets anyway,
   * so forgetting it changes nothing (and reconnecting does not refill a bucket early).
   */
  sweep(): void {
    const now = this.now();
    const fullAfterMs = (this.burst / this.ratePerSec) * 1000;
    for (const [key, b] of this.buckets) if (now - b.at >= fullAfterMs) this.buckets.delete(key);
  }
}
