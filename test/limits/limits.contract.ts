// The Limits contract: one suite that every Limits implementation must pass, case by case against
// the guarantees in the comment on the Limits interface (src/limits/limits.ts). An
// implementation's test file calls `limitsContract` with a harness that makes its nodes. The
// one-node cases run everywhere; the cases across nodes run wherever the implementation has
// them, and an implementation skips one only by naming it with a reason.
import { afterEach, describe, expect, it } from 'vitest';
import type { Backoff, Limits, RateBuckets } from '../../src/limits/limits.js';

export interface LimitsHarness<L extends Limits> {
  /**
   * `n` nodes of one deployment sharing their state, fresh for each call (isolated from other
   * calls and other runs). With one node by definition, only n = 1. Closed after each case.
   */
  open(n: number): Promise<L[]>;
  /** Resolves once `buckets` has no request to shared state in flight (at once when exact). */
  settle(buckets: RateBuckets): Promise<void>;
  /** The lease size of `buckets`: the per-node term of the overshoot bound (0 when exact). */
  lease(buckets: RateBuckets): number;
  /** Cuts `node` off from the shared state for good, without closing it (case `unreachable`). */
  cutOff?(node: L): void | Promise<void>;
}

export const SKIPPABLE_CASES = {
  sharedBurst: 'nodes share one burst: together within burst + 2·k·lease, not k bursts',
  sharedRate: 'nodes share one rate: hammered on two nodes, within burst + rate·t + 2·k·lease',
  idleHandedBack: 'a key idle on a node hands its leased tokens back on sweep',
  attemptsAcrossNodes: 'attempts are counted atomically across nodes',
  marksAcrossNodes: 'a mark made on one node is seen on another',
  unreachable: 'keeps answering, per node, when the shared state cannot be asked',
} as const;
export type SkippableCase = keyof typeof SKIPPABLE_CASES;

export interface LimitsContractOptions {
  skip?: Partial<Record<SkippableCase, string>>;
}

const backoff: Backoff = { free: 2, baseMs: 200, maxMs: 400, forgetMs: 10_000 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Takes one token at a time, settling after each, until a take is refused; the count. */
async function drain(
  harness: LimitsHarness<Limits>,
  buckets: RateBuckets,
  key: string,
  max = 1000,
): Promise<number> {
  let granted = 0;
  for (let i = 0; i < max; i++) {
    const ok = buckets.take(key);
    await harness.settle(buckets);
    if (!ok) return granted;
    granted += 1;
  }
  throw new Error(`more than ${max} takes were granted`);
}

export function limitsContract<L extends Limits>(
  name: string,
  harness: LimitsHarness<L>,
  options: LimitsContractOptions = {},
): void {
  const h = harness as unknown as LimitsHarness<Limits>;
  describe(`Limits contract: ${name}`, () => {
    const opened: L[] = [];
    const open = async (n: number) => {
      const nodes = await harness.open(n);
      expect(nodes).toHaveLength(n);
      opened.push(...nodes);
      return nodes;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((node) => node.close()));
    });
    const skippable = (id: SkippableCase, body: () => Promise<void>) => {
      const reason = options.skip?.[id];
      if (reason) it.skip(`${SKIPPABLE_CASES[id]} (skipped: ${reason})`, body);
      else it(SKIPPABLE_CASES[id], body);
    };

    describe('token buckets, one node', () => {
      it('grants the first take of a fresh key at once, synchronously', async () => {
        const [a] = await open(1);
        expect(a!.description).toMatch(/\S/);
        const buckets = a!.buckets('first', { ratePerSec: 1, burst: 5 });
        expect(buckets.take('k')).toBe(true);
        expect(buckets.take('other')).toBe(true);
      });

      it('gives a key its burst (within one lease), refuses it, then refills it at the rate', async () => {
        const [a] = await open(1);
        const buckets = a!.buckets('burst', { ratePerSec: 5, burst: 10 });
        const lease = harness.lease(buckets);
        const started = Date.now();
        const granted = await drain(h, buckets, 'k');
        const refill = Math.ceil((5 * (Date.now() - started)) / 1000);
        expect(granted).toBeGreaterThanOrEqual(10 - lease);
        expect(granted).toBeLessThanOrEqual(10 + 2 * lease + refill);
        expect(buckets.take('k')).toBe(false);
        await harness.settle(buckets);
        await sleep(650); // three tokens' time at 5/s
        // A node may first need one round trip to pay back what it took on credit.
        let ok = buckets.take('k');
        if (!ok) {
          await harness.settle(buckets);
          ok = buckets.take('k');
        }
        expect(ok).toBe(true);
      });

      it('keeps keys apart: an empty bucket leaves the others full', async () => {
        const [a] = await open(1);
        const buckets = a!.buckets('apart', { ratePerSec: 1, burst: 4 });
        await drain(h, buckets, 'one');
        expect(buckets.take('one')).toBe(false);
        expect(await drain(h, buckets, 'two')).toBeGreaterThanOrEqual(4 - harness.lease(buckets));
      });

      it('keeps names apart: two limits on one key do not share tokens', async () => {
        const [a] = await open(1);
        const x = a!.buckets('name-x', { ratePerSec: 1, burst: 3 });
        const y = a!.buckets('name-y', { ratePerSec: 1, burst: 3 });
        await drain(h, x, 'k');
        expect(y.take('k')).toBe(true);
      });

      it('sweep keeps what still limits: a drained key stays refused', async () => {
        const [a] = await open(1);
        const buckets = a!.buckets('sweep', { ratePerSec: 0.5, burst: 3 });
        await drain(h, buckets, 'k');
        buckets.sweep();
        await harness.settle(buckets);
        expect(buckets.take('k')).toBe(false);
      });
    });

    describe('token buckets, several nodes', () => {
      skippable('sharedBurst', async () => {
        const nodes = await open(2);
        const spec = { ratePerSec: 1, burst: 100 };
        const buckets = nodes.map((n) => n.buckets('shared-burst', spec));
        const lease = harness.lease(buckets[0]!);
        const started = Date.now();
        // Alternate between the nodes, a few takes at once on each, until neither grants any.
        let granted = 0;
        let dryRounds = 0;
        for (let round = 0; round < 1000 && dryRounds < 3; round++) {
          let any = false;
          for (const b of buckets) {
            for (let j = 0; j < 3; j++) {
              if (!b.take('k')) continue;
              granted += 1;
              any = true;
            }
            await harness.settle(b);
          }
          dryRounds = any ? 0 : dryRounds + 1;
        }
        const refill = Math.ceil((spec.ratePerSec * (Date.now() - started)) / 1000);
        // A bucket per node would have given 200.
        expect(granted).toBeLessThanOrEqual(100 + 2 * 2 * lease + refill);
        expect(granted).toBeGreaterThanOrEqual(100 - 2 * lease);
      });

      skippable('sharedRate', async () => {
        const nodes = await open(2);
        const spec = { ratePerSec: 20, burst: 5 };
        const buckets = nodes.map((n) => n.buckets('shared-rate', spec));
        const lease = harness.lease(buckets[0]!);
        const started = Date.now();
        let granted = 0;
        while (Date.now() - started < 1000) {
          for (const b of buckets) for (let j = 0; j < 5; j++) if (b.take('k')) granted += 1;
          await sleep(10);
        }
        const seconds = (Date.now() - started) / 1000;
        // A bucket per node would have given about 2 · (5 + 20 · seconds).
        expect(granted).toBeLessThanOrEqual(5 + Math.ceil(20 * seconds) + 2 * 2 * lease);
        expect(granted).toBeGreaterThanOrEqual(20 * seconds * 0.5);
      });

      skippable('idleHandedBack', async () => {
        const [a, b] = await open(2);
        const spec = { ratePerSec: 0.1, burst: 20 };
        const onA = a!.buckets('idle', spec);
        const onB = b!.buckets('idle', spec);
        const lease = harness.lease(onA);
        expect(onA.take('k')).toBe(true);
        await harness.settle(onA); // a holds a lease of unused tokens now
        await sleep(150); // idle for longer than the harness' idle time
        onA.sweep();
        await harness.settle(onA);
        // Everything but a's one token is b's to take.
        expect(await drain(h, onB, 'k')).toBeGreaterThanOrEqual(19 - lease);
      });
    });

    describe('attempt counters', () => {
      it('passes `free` attempts, then makes each wait twice as long, up to the most', async () => {
        const [a] = await open(1);
        const c = [{ key: 'grow', backoff, enforce: true }];
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect(await a!.attempt(c)).toEqual({ ok: true });
        const first = await a!.attempt(c);
        expect(first).toMatchObject({ ok: false, refusedBy: 0 });
        const wait1 = !first.ok ? first.retryAfterMs : 0;
        expect(wait1).toBeGreaterThan(100);
        expect(wait1).toBeLessThanOrEqual(200);
        // Refused attempts count nothing: asking again does not make the wait longer.
        const again = await a!.attempt(c);
        expect(!again.ok && again.retryAfterMs).toBeLessThanOrEqual(wait1);
        await sleep(wait1 + 20);
        expect(await a!.attempt(c)).toEqual({ ok: true });
        const second = await a!.attempt(c);
        const wait2 = !second.ok ? second.retryAfterMs : 0;
        expect(wait2).toBeGreaterThan(300);
        expect(wait2).toBeLessThanOrEqual(400);
        await sleep(wait2 + 20);
        expect(await a!.attempt(c)).toEqual({ ok: true });
        const third = await a!.attempt(c); // 800 ms, capped at 400
        expect(!third.ok && third.retryAfterMs).toBeLessThanOrEqual(400);
      });

      it('counts on every counter or on none; only enforcing ones refuse; says which', async () => {
        const [a] = await open(1);
        const strict: Backoff = { free: 1, baseMs: 5_000, maxMs: 5_000, forgetMs: 10_000 };
        const loose: Backoff = { free: 3, baseMs: 60_000, maxMs: 60_000, forgetMs: 10_000 };
        const pair = { key: 'pair', backoff: strict, enforce: true };
        const account = { key: 'account', backoff: loose, enforce: false };
        expect(await a!.attempt([pair, account])).toEqual({ ok: true });
        const refused = await a!.attempt([account, pair]);
        expect(refused).toMatchObject({ ok: false, refusedBy: 1 });
        // `account` counted 1 so far (the refused attempt counted on none): two more are free.
        const other = { key: 'pair2', backoff: strict, enforce: true };
        expect(await a!.attempt([{ ...other, key: 'p3' }, account])).toEqual({ ok: true });
        expect(await a!.attempt([{ ...other, key: 'p4' }, account])).toEqual({ ok: true });
        // Now at 3: enforcing, it refuses for a minute; not enforcing, it still counts.
        expect(await a!.attempt([{ ...account, enforce: false }])).toEqual({ ok: true });
        const byAccount = await a!.attempt([
          { ...other, key: 'p5' },
          { ...account, enforce: true },
        ]);
        expect(byAccount).toMatchObject({ ok: false, refusedBy: 1 });
        expect(!byAccount.ok && byAccount.retryAfterMs).toBeGreaterThan(59_000);
        // The longest wait wins.
        const both = await a!.attempt([pair, { ...account, enforce: true }]);
        expect(both).toMatchObject({ ok: false, refusedBy: 1 });
      });

      it('forgive takes one attempt back; reset forgets the counter', async () => {
        const [a] = await open(1);
        const one: Backoff = { free: 1, baseMs: 60_000, maxMs: 60_000, forgetMs: 60_000 };
        const c = [{ key: 'fr', backoff: one, enforce: true }];
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect((await a!.attempt(c)).ok).toBe(false);
        await a!.forgive('fr');
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect((await a!.attempt(c)).ok).toBe(false);
        await a!.reset('fr');
        expect(await a!.attempt(c)).toEqual({ ok: true });
        // Never below zero: forgiving twice leaves one free attempt, not two.
        await a!.forgive('fr');
        await a!.forgive('fr');
        await a!.forgive('unknown');
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect((await a!.attempt(c)).ok).toBe(false);
      });

      it('forgets a counter `forgetMs` after its last attempt', async () => {
        const [a] = await open(1);
        const short: Backoff = { free: 1, baseMs: 60_000, maxMs: 60_000, forgetMs: 150 };
        const c = [{ key: 'fg', backoff: short, enforce: true }];
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect((await a!.attempt(c)).ok).toBe(false);
        await sleep(200);
        expect(await a!.attempt(c)).toEqual({ ok: true });
      });

      it('counts concurrent attempts one by one: exactly `free` of many pass', async () => {
        const [a] = await open(1);
        const c = [{ key: 'race', backoff: { ...backoff, free: 5 }, enforce: true }];
        const results = await Promise.all(Array.from({ length: 30 }, () => a!.attempt(c)));
        expect(results.filter((r) => r.ok)).toHaveLength(5);
      });

      skippable('attemptsAcrossNodes', async () => {
        const nodes = await open(3);
        const c = [{ key: 'race', backoff: { ...backoff, free: 7 }, enforce: true }];
        const results = await Promise.all(
          Array.from({ length: 60 }, (_, i) => nodes[i % 3]!.attempt(c)),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(7);
        await nodes[1]!.reset('race');
        expect(await nodes[2]!.attempt(c)).toEqual({ ok: true });
      });
    });

    describe('marks', () => {
      it('remembers a key for its time to live, and again from the start when renewed', async () => {
        const [a] = await open(1);
        expect(await a!.recall('m')).toBe(false);
        await a!.remember('m', 200);
        expect(await a!.recall('m')).toBe(true);
        expect(await a!.recall('other')).toBe(false);
        await sleep(120);
        await a!.remember('m', 200);
        await sleep(120);
        expect(await a!.recall('m')).toBe(true);
        await sleep(120);
        expect(await a!.recall('m')).toBe(false);
      });

      skippable('marksAcrossNodes', async () => {
        const [a, b] = await open(2);
        await a!.remember('seen', 10_000);
        expect(await b!.recall('seen')).toBe(true);
      });
    });

    describe('failures', () => {
      skippable('unreachable', async () => {
        const [a] = await open(1);
        const buckets = a!.buckets('cut', { ratePerSec: 1, burst: 3 });
        expect(buckets.take('k')).toBe(true);
        await harness.settle(buckets);
        if (!harness.cutOff) throw new Error(`${name}: this case needs harness.cutOff`);
        await harness.cutOff(a!);
        // Takes still answer at once, limited on this node alone.
        const answers = Array.from({ length: 20 }, () => buckets.take('k2'));
        await harness.settle(buckets);
        const later = Array.from({ length: 20 }, () => buckets.take('k2'));
        expect([...answers, ...later].every((x) => typeof x === 'boolean')).toBe(true);
        expect([...answers, ...later].filter(Boolean).length).toBeLessThanOrEqual(
          3 + harness.lease(buckets) + 1,
        );
        expect(later.filter(Boolean).length).toBeLessThan(20);
        const c = [{ key: 'cut', backoff, enforce: true }];
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect(await a!.attempt(c)).toEqual({ ok: true });
        expect((await a!.attempt(c)).ok).toBe(false);
        await expect(a!.forgive('cut')).resolves.toBeUndefined();
        await expect(a!.reset('cut')).resolves.toBeUndefined();
        await a!.remember('m', 10_000);
        expect(await a!.recall('m')).toBe(true);
      });
    });
  });
}
