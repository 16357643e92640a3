// Scenario 2, open loop: messages leave on a fixed schedule (rate R in total, round-robin over
// the pairs) whatever the answers, and latency is measured from the SCHEDULED send time, so a
// stalled server or generator shows up in the figures (no coordinated omission).
import type { Identity } from '../lib/drivers.js';
import type { Peer } from '../lib/peers.js';
import { CpuMeter, OtherCpuMeter, sleep } from '../lib/proc.js';
import { histogram, percentileCurve, recordMs, summarize, type Latency } from '../lib/stats.js';
import { Tracker, type Accounting } from '../lib/tracker.js';
import { drain, openPairs } from './pairs.js';
import { commitStats, type CommitStats } from './throughput.js';

export interface OpenLoopSettings {
  pairs: number;
  rate: number;
  size: number;
  warmupSec: number;
  durationSec: number;
  drainSec: number;
}

export interface OpenLoopResult {
  settings: OpenLoopSettings;
  sentPerSec: number;
  deliveredPerSec: number;
  /** From the scheduled send time. */
  delivery: Latency;
  /** The delivery latency's percentile curve, [percentile, ms] (absent in older results). */
  deliveryCurve?: Array<[number, number]>;
  ack: Latency;
  /** How late the generator sent, against the schedule (its own health). */
  sendLag: Latency;
  accounting: Accounting;
  unexpectedCloses: number;
  drainSec: number;
  serverCpu: { cpuSec: number; pct: number };
  generatorCpu: { cpuSec: number; pct: number };
  /** Everything else on the machine (kernel included): a noise indicator. */
  otherCpu: { pct: number };
  commits?: CommitStats;
}

export async function openLoop(
  peer: Peer,
  senders: Identity[],
  receivers: Identity[],
  s: OpenLoopSettings,
): Promise<OpenLoopResult> {
  const tracker = new Tracker('o', s.pairs, s.size);
  const set = await openPairs(peer, senders, receivers, tracker);
  const lag = histogram();
  try {
    const interval = 1000 / s.rate;
    const total = Math.ceil(s.rate * (s.warmupSec + s.durationSec));
    const start = performance.now() + 20;
    tracker.windowStart = start + s.warmupSec * 1000;
    tracker.windowEnd = tracker.windowStart + s.durationSec * 1000;
    let k = 0;
    let measuring: { server: CpuMeter; generator: CpuMeter; other: OtherCpuMeter } | undefined;
    let before: Awaited<ReturnType<NonNullable<Peer['commitCounters']>>> | undefined;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (!measuring && now >= tracker.windowStart) {
          measuring = {
            server: new CpuMeter(peer.serverPids),
            generator: new CpuMeter('self'),
            other: new OtherCpuMeter([peer.serverPids, 'self']),
          };
          void peer.commitCounters?.().then((c) => (before = c));
        }
        while (k < total && start + k * interval <= now) {
          const pair = k % s.pairs;
          const n = Math.floor(k / s.pairs);
          const scheduled = start + k * interval;
          const clientId = tracker.clientId(pair, n);
          tracker.markSent(pair, n, scheduled);
          set.senders[pair]!.send(receivers[pair]!.username, tracker.content(clientId), clientId);
          if (scheduled >= tracker.windowStart) recordMs(lag, performance.now() - scheduled);
          k += 1;
        }
        if (k < total) setTimeout(tick, 1);
        else resolve();
      };
      setTimeout(tick, Math.max(0, start - performance.now()));
    });
    // The window closes with the last scheduled send; deliveries after it count in latency only.
    await sleep(Math.max(0, tracker.windowEnd - performance.now()));
    const stats = {
      server: measuring?.server.stop() ?? { cpuSec: NaN, pct: NaN },
      generator: measuring?.generator.stop() ?? { cpuSec: NaN, pct: NaN },
      other: measuring?.other.stop() ?? { pct: NaN },
    };
    const after = await peer.commitCounters?.();
    const drained = await drain(tracker, s.drainSec * 1000);
    return {
      settings: s,
      sentPerSec: Math.round(tracker.sentInWindow / s.durationSec),
      deliveredPerSec: Math.round(tracker.deliveredInWindow / s.durationSec),
      delivery: summarize(tracker.deliveryLatency),
      deliveryCurve: percentileCurve(tracker.deliveryLatency),
      ack: summarize(tracker.ackLatency),
      sendLag: summarize(lag),
      accounting: tracker.accounting(),
      unexpectedCloses: set.unexpectedCloses(),
      drainSec: drained,
      serverCpu: stats.server,
      generatorCpu: stats.generator,
      otherCpu: stats.other,
      ...(before && after ? { commits: commitStats(before, after, s.durationSec) } : {}),
    };
  } finally {
    set.close();
  }
}
