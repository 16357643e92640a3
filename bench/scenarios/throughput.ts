// Scenario 1, closed loop: every sender keeps W messages in flight (a new one on each ack), for a
// warm-up and then T measured seconds. Reports delivered messages/s in the window, ack and
// delivery latency of the messages sent in the window, CPU of server and generator, accounting.
import type { Identity } from '../lib/drivers.js';
import type { CommitCounters, Peer } from '../lib/peers.js';
import { CpuMeter, OtherCpuMeter, round, sleep } from '../lib/proc.js';
import type { Latency } from '../lib/stats.js';
import { Tracker, type Accounting } from '../lib/tracker.js';
import { drain, openPairs } from './pairs.js';

export interface ThroughputSettings {
  pairs: number;
  window: number;
  size: number;
  warmupSec: number;
  durationSec: number;
  drainSec: number;
}

export interface CommitStats {
  commitsPerSec: number;
  meanBatch: number;
  meanCommitMs: number;
  /** Commits longer than 5, 10, 50 and 100 ms in the window: each delays its batch that long. */
  over5ms: number;
  over10ms: number;
  over50ms: number;
  over100ms: number;
  /** Event-loop delay over the window: max and p99 (ms). */
  loopMaxMs?: number;
  loopP99Ms?: number;
}

export interface ThroughputResult {
  settings: ThroughputSettings;
  deliveredPerSec: number;
  ackedPerSec: number;
  ack: Latency;
  delivery: Latency;
  accounting: Accounting;
  unexpectedCloses: number;
  drainSec: number;
  serverCpu: { cpuSec: number; pct: number };
  generatorCpu: { cpuSec: number; pct: number };
  /** Everything else on the machine (kernel included): a noise indicator. */
  otherCpu: { pct: number };
  commits?: CommitStats;
}

export async function throughput(
  peer: Peer,
  senders: Identity[],
  receivers: Identity[],
  s: ThroughputSettings,
): Promise<ThroughputResult> {
  const tracker = new Tracker('t', s.pairs, s.size);
  const seq = new Int32Array(s.pairs);
  let sending = true;
  const sendNext = (pair: number) => {
    if (!sending) return;
    const n = seq[pair] as number;
    seq[pair] = n + 1;
    const clientId = tracker.clientId(pair, n);
    tracker.markSent(pair, n, performance.now());
    set.senders[pair]!.send(receivers[pair]!.username, tracker.content(clientId), clientId);
  };
  const set = await openPairs(peer, senders, receivers, tracker, sendNext);
  try {
    for (let pair = 0; pair < s.pairs; pair++) {
      for (let k = 0; k < s.window; k++) sendNext(pair);
    }
    await sleep(s.warmupSec * 1000);
    const serverCpu = new CpuMeter(peer.serverPids);
    const generatorCpu = new CpuMeter('self');
    const otherCpu = new OtherCpuMeter([peer.serverPids, 'self']);
    const before = await peer.commitCounters?.();
    tracker.windowStart = performance.now();
    tracker.windowEnd = tracker.windowStart + s.durationSec * 1000;
    await sleep(s.durationSec * 1000);
    const elapsed = (performance.now() - tracker.windowStart) / 1000;
    const server = serverCpu.stop();
    const generator = generatorCpu.stop();
    const other = otherCpu.stop();
    const after = await peer.commitCounters?.();
    sending = false;
    const drained = await drain(tracker, s.drainSec * 1000);
    return {
      settings: s,
      deliveredPerSec: Math.round(tracker.deliveredInWindow / elapsed),
      ackedPerSec: Math.round(tracker.ackedInWindow / elapsed),
      ...tracker.latencies(),
      accounting: tracker.accounting(),
      unexpectedCloses: set.unexpectedCloses(),
      drainSec: drained,
      serverCpu: server,
      generatorCpu: generator,
      otherCpu: other,
      ...(before && after ? { commits: commitStats(before, after, elapsed) } : {}),
    };
  } finally {
    sending = false;
    set.close();
  }
}

export function commitStats(a: CommitCounters, b: CommitCounters, seconds: number): CommitStats {
  const batches = b.batches - a.batches;
  return {
    commitsPerSec: Math.round(batches / seconds),
    meanBatch: round((b.messages - a.messages) / Math.max(batches, 1), 1),
    meanCommitMs: round((1000 * (b.seconds - a.seconds)) / Math.max(batches, 1), 3),
    over5ms: batches - (b.within5ms - a.within5ms),
    over10ms: batches - (b.within10ms - a.within10ms),
    over50ms: batches - (b.within50ms - a.within50ms),
    over100ms: batches - (b.within100ms - a.within100ms),
    loopMaxMs: round(b.loopMaxMs, 1),
    loopP99Ms: round(b.loopP99Ms, 1),
  };
}
