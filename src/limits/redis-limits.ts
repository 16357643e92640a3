// Limits in Redis, shared by every node of a deployment (the guarantees are in limits.ts). Keys,
// under a configurable prefix (`chat:limits:` by default):
//   bucket:<name>:<key>  a token bucket: a hash {tokens, at}; gone when it would be full
//   count:<key>          an attempt counter: a hash {n, last}; expires when forgotten
//   mark:<key>           a mark (a known source), with its time to live
// Every change is one Lua script, so it is atomic across nodes, and every script reads Redis's
// clock (TIME), so the nodes' clocks do not matter. Token buckets are leased in chunks: a take is
// local, and Redis is asked once per chunk (see LeasedBuckets).
import type { Redis } from 'ioredis';
import { consoleLogger, FailureLog, type RedisLogger } from '../bus/redis-bus.js';
import type { AttemptResult, BucketSpec, Counter, Limits, RateBuckets } from './limits.js';
import { MemoryLimits } from './memory-limits.js';
import { TokenBuckets } from './token-bucket.js';

export interface RedisLimitsOptions {
  /** Prepended to every key (default `chat:limits:`); tests use a random one. */
  prefix?: string;
  /**
   * The share of a bucket's burst a node leases at a time (default 0.1). Smaller: less overshoot
   * across nodes, more requests to Redis, and fewer takes on credit before the first lease.
   */
  leaseFraction?: number;
  /** A key unused this long on a node hands its leased tokens back on `sweep` (default 10 s). */
  idleMs?: number;
  /** After Redis failed, how long buckets count locally before asking it again (default 1 s). */
  retryMs?: number;
  logger?: RedisLogger;
}

interface LimitScripts {
  chatLimitsLease(
    key: string,
    ratePerMs: string,
    burst: number,
    want: number,
    give: number,
  ): Promise<[number, number]>;
  chatLimitsAttempt(...keysThenArgs: Array<string | number>): Promise<[number, number, number]>;
  chatLimitsForgive(key: string): Promise<number>;
}

/** The current time in ms, from Redis's clock. */
const NOW = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`;

// KEYS[1]: the bucket. ARGV: tokens per ms, burst, tokens wanted, tokens given back.
// Refills the bucket, takes the given-back tokens (up to the burst), grants at most `want`
// whole tokens. Returns {granted, ms until the next whole token if fewer were granted}.
const LEASE_LUA = `${NOW}
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, give = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
tokens = math.min(burst, tokens + give)
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
local wait = 0
if granted < want then wait = math.ceil((1 - tokens) / rate) end
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', string.format('%d', at))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
end
return {granted, wait}`;

// KEYS: the counters. ARGV: five per counter: enforce (1/0), free, baseMs, maxMs, forgetMs.
// Returns {1, 0, -1} when the attempt is counted on every counter, else {0, wait ms, index of the
// counter with the longest wait} and nothing is counted. Mirrors backoffWait in limits.ts.
const ATTEMPT_LUA = `${NOW}
local counts = {}
local wait, by = 0, -1
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 5
  local free, base = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local max, forget = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local state = redis.call('HMGET', key, 'n', 'last')
  local n, last = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  if now - last >= forget then n = 0 end
  counts[i] = n
  if ARGV[a + 1] == '1' and n >= free then
    local left = math.min(base * 2 ^ (n - free), max) - (now - last)
    if left > wait then wait, by = left, i - 1 end
  end
end
if wait > 0 then return {0, math.ceil(wait), by} end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'n', counts[i] + 1, 'last', string.format('%d', now))
  redis.call('PEXPIRE', key, ARGV[(i - 1) * 5 + 5])
end
return {1, 0, -1}`;

// KEYS[1]: a counter. Takes one attempt back, never below zero, keeping its expiry.
const FORGIVE_LUA = `
local n = tonumber(redis.call('HGET', KEYS[1], 'n'))
if n == nil or n <= 0 then return 0 end
redis.call('HSET', KEYS[1], 'n', n - 1)
return n - 1`;

export class RedisLimits implements Limits {
  readonly description: string;
  readonly client: Redis & LimitScripts;
  readonly prefix: string;
  readonly leaseFraction: number;
  readonly idleMs: number;
  readonly retryMs: number;
  readonly failures: FailureLog;
  /** Where the async operations go while Redis cannot be asked. */
  private readonly local = new MemoryLimits();
  /** Set by `close`: failures of requests still in flight are not worth a log line. */
  closed = false;

  /** Uses `client` (e.g. the bus' publisher, `RedisBus.client`) without owning it. */
  constructor(client: Redis, options: RedisLimitsOptions = {}) {
    this.client = client as Redis & LimitScripts;
    this.prefix = options.prefix ?? 'chat:limits:';
    this.leaseFraction = options.leaseFraction ?? 0.1;
    this.idleMs = options.idleMs ?? 10_000;
    this.retryMs = options.retryMs ?? 1_000;
    this.description = `redis://${client.options.host ?? 'localhost'}:${client.options.port ?? 6379}`;
    this.failures = new FailureLog(
      options.logger ?? consoleLogger,
      `redis limits ${this.description}`,
    );
    client.defineCommand('chatLimitsLease', { numberOfKeys: 1, lua: LEASE_LUA });
    client.defineCommand('chatLimitsAttempt', { lua: ATTEMPT_LUA });
    client.defineCommand('chatLimitsForgive', { numberOfKeys: 1, lua: FORGIVE_LUA });
  }

  buckets(name: string, spec: BucketSpec): LeasedBuckets {
    return new LeasedBuckets(this, `${this.prefix}bucket:${name}:`, spec);
  }

  async attempt(counters: Counter[]): Promise<AttemptResult> {
    const keys = counters.map((c) => this.countKey(c.key));
    const args = counters.flatMap(({ backoff: b, enforce }) => [
      enforce ? 1 : 0,
      b.free,
      b.baseMs,
      b.maxMs,
      b.forgetMs,
    ]);
    try {
      const [ok, wait, by] = await this.client.chatLimitsAttempt(keys.length, ...keys, ...args);
      this.failures.recovered('attempt');
      return ok === 1 ? { ok: true } : { ok: false, retryAfterMs: wait, refusedBy: by };
    } catch (error) {
      this.failures.record(error, 'attempt');
      return this.local.attempt(counters);
    }
  }

  async forgive(key: string): Promise<void> {
    await this.client.chatLimitsForgive(this.countKey(key)).catch((error: unknown) => {
      this.failures.record(error, 'forgive');
      return this.local.forgive(key);
    });
  }

  async reset(key: string): Promise<void> {
    await this.client.del(this.countKey(key)).catch((error: unknown) => {
      this.failures.record(error, 'reset');
      return this.local.reset(key);
    });
  }

  async remember(key: string, ttlMs: number): Promise<void> {
    await this.client.set(this.markKey(key), '1', 'PX', ttlMs).catch((error: unknown) => {
      this.failures.record(error, 'remember');
      return this.local.remember(key, ttlMs);
    });
  }

  async recall(key: string): Promise<boolean> {
    try {
      return (await this.client.exists(this.markKey(key))) === 1;
    } catch (error) {
      this.failures.record(error, 'recall');
      return this.local.recall(key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private countKey(key: string): string {
    return `${this.prefix}count:${key}`;
  }

  private markKey(key: string): string {
    return `${this.prefix}mark:${key}`;
  }
}

/** What a node holds of one key's shared bucket. */
interface Lease {
  /** Tokens leased from Redis and not used yet. */
  tokens: number;
  /** Tokens used on credit, not yet covered by a grant. */
  debt: number;
  /** A request to Redis for this key is in flight. */
  pending: boolean;
  /** Redis had no whole token left: until then, no credit and no request. */
  emptyUntil: number;
  usedAt: number;
}

/**
 * One shared token bucket per key, leased in chunks of `lease` tokens: `take` uses the node's
 * leased tokens and asks Redis for the next chunk when half of one is left. With none left it
 * takes up to `lease` on credit while it asks; the debt is paid from the next grants first.
 * While Redis cannot be asked, takes go to a local bucket per key instead.
 */
export class LeasedBuckets implements RateBuckets {
  readonly lease: number;
  private readonly leases = new Map<string, Lease>();
  private readonly fallback: TokenBuckets;
  private readonly ratePerMs: string;
  /** After a failure: takes go to the local buckets until then. */
  private localUntil = 0;
  private inFlight = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly owner: RedisLimits,
    private readonly keyPrefix: string,
    private readonly spec: BucketSpec,
  ) {
    this.lease = Math.max(1, Math.min(spec.burst, Math.ceil(spec.burst * owner.leaseFraction)));
    this.fallback = new TokenBuckets(spec.ratePerSec, spec.burst);
    this.ratePerMs = String(spec.ratePerSec / 1000);
  }

  take(key: string): boolean {
    const now = Date.now();
    if (now < this.localUntil) return this.fallback.take(key);
    let l = this.leases.get(key);
    if (!l) {
      l = { tokens: 0, debt: 0, pending: false, emptyUntil: 0, usedAt: now };
      this.leases.set(key, l);
    }
    l.usedAt = now;
    if (l.tokens >= 1) {
      l.tokens -= 1;
      if (!l.pending && l.tokens * 2 <= this.lease && now >= l.emptyUntil) this.ask(key, l, false);
      return true;
    }
    if (now < l.emptyUntil) return false;
    const onCredit = l.debt < this.lease;
    if (onCredit) l.debt += 1;
    if (!l.pending) this.ask(key, l, false);
    return onCredit;
  }

  sweep(): void {
    const now = Date.now();
    this.fallback.sweep();
    for (const [key, l] of this.leases) {
      if (l.pending || now - l.usedAt < this.owner.idleMs) continue;
      if (l.tokens < 1 && l.debt === 0) this.leases.delete(key);
      else if (now >= this.localUntil) this.ask(key, l, true);
    }
  }

  /** Resolves once no request to Redis is in flight (tests; a settled state). */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Asks Redis for tokens: enough to pay the debt and hold a whole chunk, or, to settle an idle
   * key, just the debt while handing the unused tokens back.
   */
  private ask(key: string, l: Lease, settle: boolean): void {
    const give = settle ? l.tokens : 0;
    const want = settle ? l.debt : this.lease - l.tokens + l.debt;
    l.tokens -= give;
    l.pending = true;
    this.inFlight += 1;
    this.owner.client
      .chatLimitsLease(this.keyPrefix + key, this.ratePerMs, this.spec.burst, want, give)
      .then(
        ([granted, waitMs]) => {
          const cover = Math.min(granted, l.debt);
          l.debt -= cover;
          l.tokens += granted - cover;
          l.emptyUntil = granted < want ? Date.now() + waitMs : 0;
          this.owner.failures.recovered('lease');
        },
        (error: unknown) => {
          // Tokens handed back in a failed request are lost: fewer tokens, never more.
          if (!this.owner.closed) this.owner.failures.record(error, 'lease');
          this.localUntil = Date.now() + this.owner.retryMs;
        },
      )
      .finally(() => {
        l.pending = false;
        this.inFlight -= 1;
        if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
      });
  }
}
