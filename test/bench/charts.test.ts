// The bench's charts render from a results object alone (no run, no timing): each series and
// the axis names are in the SVG.
import { describe, expect, it } from 'vitest';
import { openLoopChart, renderCharts, soakChart, throughputChart } from '../../bench/lib/charts.js';
import type { PeerReport, RunReport } from '../../bench/lib/report.js';
import { verdict, type SoakMinute, type SoakReport } from '../../bench/lib/soak-report.js';
import type { OpenLoopResult } from '../../bench/scenarios/open-loop.js';
import type { ThroughputResult } from '../../bench/scenarios/throughput.js';

const latency = (p50: number, p99: number) => ({
  count: 1000,
  p50,
  p95: (p50 + p99) / 2,
  p99,
  max: p99 * 2,
  mean: p50,
});

const accounting = {
  sent: 1000,
  acked: 1000,
  delivered: 1000,
  lost: 0,
  unacked: 0,
  duplicateAcks: 0,
  duplicateDeliveries: 0,
  misrouted: 0,
  reordered: 0,
  errors: {},
};

const cpu = { cpuSec: 1, pct: 50 };

function openLoop(p50: number, p99: number, curve = true): OpenLoopResult {
  return {
    settings: { pairs: 2, rate: 100, size: 10, warmupSec: 1, durationSec: 1, drainSec: 1 },
    sentPerSec: 100,
    deliveredPerSec: 100,
    delivery: latency(p50, p99),
    ...(curve
      ? {
          deliveryCurve: [
            [50, p50],
            [90, (p50 + p99) / 2],
            [99, p99],
            [99.9, p99 * 1.5],
          ] as Array<[number, number]>,
        }
      : {}),
    ack: latency(p50, p99),
    sendLag: latency(0.1, 0.2),
    accounting,
    unexpectedCloses: 0,
    drainSec: 0,
    serverCpu: cpu,
    generatorCpu: cpu,
    otherCpu: { pct: 1 },
  };
}

function throughput(perSec: number): ThroughputResult {
  return {
    deliveredPerSec: perSec,
    accounting,
  } as unknown as ThroughputResult;
}

const peers: PeerReport[] = [
  {
    name: 'chat',
    description: 'chat',
    openLoop: [openLoop(1.5, 8), openLoop(1.6, 9)],
    throughput: [throughput(31_234), throughput(30_987)],
  },
  {
    name: 'ws-relay',
    description: 'relay',
    // An older results file: no curve, only the summary percentiles.
    openLoop: [openLoop(0.9, 2, false), { error: 'failed on purpose' }],
    throughput: [throughput(61_000), { error: 'failed on purpose' }],
  },
];

const run = {
  startedAt: '2026-11-28T10:00:00.000Z',
  finishedAt: '2026-11-28T10:05:00.000Z',
  durationSec: 300,
  command: 'npm run bench',
  commit: 'abc1234',
  dirty: false,
  node: 'v20.20.0',
  cpuModel: 'Test CPU 9000',
  cores: 2,
  kernel: '6.0',
  options: { rate: 5000, pairs: 50, size: 100, openDurationSec: 10, window: 10, durationSec: 10 },
  peers,
} as unknown as RunReport;

describe('bench charts', () => {
  it('draws the open loop: a line per peer and round, percentile and latency axes', () => {
    const svg = openLoopChart(run) ?? '';
    expect(svg.startsWith('<svg')).toBe(true);
    for (const name of ['chat, round 1', 'chat, round 2', 'ws-relay, round 1']) {
      expect(svg).toContain(name);
    }
    expect(svg).not.toContain('ws-relay, round 2');
    expect(svg).toContain('delivery latency (ms, log scale)');
    expect(svg).toContain('p99.9');
    expect(svg).toContain('Test CPU 9000, 2 cores, Node v20.20.0 · commit abc1234');
  });

  it('draws closed-loop throughput: bars per round with their values', () => {
    const svg = throughputChart(run) ?? '';
    expect(svg).toContain('round 1');
    expect(svg).toContain('round 2');
    expect(svg).toContain('31,234');
    expect(svg).toContain('61,000');
    expect(svg).toContain('delivered messages/s');
  });

  it('leaves out charts the results have no figures for', () => {
    const idleOnly = { ...run, peers: [{ name: 'chat', description: 'chat' }] } as RunReport;
    expect(renderCharts(idleOnly)).toEqual([]);
    expect(renderCharts(run).map((c) => c.name)).toEqual(['open-loop', 'throughput']);
  });

  it('draws the soak minutes with the verdict, and the RSS trend fits the data', () => {
    const minute = (i: number): SoakMinute => ({
      minute: i,
      rssMiB: 100 + i,
      heapUsedMiB: 50,
      heapTotalMiB: 60,
      serverConnections: 10,
      scheduled: 600,
      acks: 600,
      frames: 1200,
      delivery: latency(2, i === 3 ? 30 : 10),
      eventLoop: { p50Ms: 1, p99Ms: 5, maxMs: 9 },
      commits: {
        commitsPerSec: 100,
        meanBatch: 2,
        meanCommitMs: 1.5,
        over5ms: 0,
        over10ms: 0,
        over50ms: 0,
        over100ms: 0,
      },
      drops: 3,
      replayed: 10,
      resent: 1,
      lost: 0,
      duplicated: 0,
      serverCpuPct: 40,
      generatorCpuPct: 30,
    });
    const minutes = [1, 2, 3, 4, 5, 6, 7].map(minute);
    const options = {
      minutes: 7,
      rate: 10,
      connections: 10,
      users: 5,
      churn: 0.03,
      downMinSec: 0.5,
      downMaxSec: 3,
      size: 100,
      contacts: 4,
      warmupMinutes: 1,
      drainSec: 30,
      maxRssSlopeMiBPerHour: 20,
      maxP99Ratio: 3,
      pin: true,
      build: true,
    };
    const integrity = {
      messages: 3000,
      expectedDeliveries: 9000,
      seenDeliveries: 9000,
      lost: 0,
      duplicateFrames: 0,
      duplicateAcks: 0,
      unacked: 0,
      misrouted: 0,
      ownEchoes: 2,
      errors: {},
      failedResumes: 0,
      unexpectedCloses: 0,
    };
    const v = verdict(minutes, integrity, options);
    // RSS grows 1 MiB a minute: 60 MiB/hour, over the 6 minutes after the warm-up.
    expect(v.rssSlopeMiBPerHour).toBe(60);
    expect(v.fitMinutes).toBe(6);
    expect(v.memoryOk).toBe(false);
    // Too few minutes after the warm-up: a slope, but no verdict.
    const short = verdict(minutes.slice(0, 4), integrity, options);
    expect(short.rssSlopeMiBPerHour).toBe(60);
    expect(short.memoryOk).toBeNull();
    expect(v.integrityOk).toBe(true);
    expect(v.p99Ratio).toBe(3);
    const report = {
      ...run,
      kind: 'soak',
      options,
      minutes,
      integrity,
      verdict: v,
    } as unknown as SoakReport;
    const svg = soakChart(report);
    for (const name of [
      'RSS (MiB)',
      'heap used (MiB)',
      'RSS trend (60 MiB/hour)',
      'delivery p99 (ms)',
      'event-loop delay p99 (ms)',
      'generator send lag p99 (ms)',
      'mean commit, fsync incl. (ms)',
      'lost deliveries',
      'duplicated',
      'minute of the run',
    ]) {
      expect(svg).toContain(name);
    }
    expect(renderCharts(report).map((c) => c.name)).toEqual(['soak']);
  });
});
