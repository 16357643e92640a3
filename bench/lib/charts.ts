// Charts of a results JSON, as SVG rendered in Node by Apache ECharts (server-side rendering, no
// browser): the open loop's delivery latency by percentile per peer and round, the closed loop's
// throughput per peer and round, and the soak's per-minute lines. They take the JSON as written
// (RunReport or SoakReport), so any earlier results file can be rendered again
// (`npm run bench:charts -- bench/results/<file>.json`).
import fs from 'node:fs';
import path from 'node:path';
import * as echarts from 'echarts';
import type { RunReport } from './report.js';
import { slope, type SoakReport } from './soak-report.js';
import type { OpenLoopResult } from '../scenarios/open-loop.js';
import type { ThroughputResult } from '../scenarios/throughput.js';

export type ChartName = 'open-loop' | 'throughput' | 'soak';

export interface Chart {
  name: ChartName;
  svg: string;
}

const WIDTH = 960;
const FONT = 'Helvetica, Arial, sans-serif';

/** One colour per peer, the same in every chart. */
const PEER_COLORS: Record<string, string> = {
  chat: '#1f77b4',
  'chat-postgres-redis': '#2ca02c',
  'ws-relay': '#ff7f0e',
  'socketio-relay': '#9467bd',
};
const OTHER_COLORS = ['#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

function peerColor(name: string, index: number): string {
  return PEER_COLORS[name] ?? OTHER_COLORS[index % OTHER_COLORS.length] ?? '#333';
}

function render(option: echarts.EChartsCoreOption, height: number): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: WIDTH, height });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: '#ffffff',
      textStyle: { fontFamily: FONT },
      ...option,
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

type Machine = Pick<RunReport, 'cpuModel' | 'cores' | 'node' | 'commit' | 'dirty' | 'startedAt'>;

/** "AMD EPYC ..., 2 cores, Node v20.20.0 · commit abc1234 · 2026-11-28 10:00 UTC" */
export function machineLine(r: Machine): string {
  const when = r.startedAt.slice(0, 16).replace('T', ' ');
  return `${r.cpuModel}, ${r.cores} cores, Node ${r.node} · commit ${r.commit}${r.dirty ? ' (uncommitted changes)' : ''} · ${when} UTC`;
}

const title = (text: string, subtext: string) => ({
  text,
  subtext,
  left: 'center',
  top: 8,
  textStyle: { fontSize: 18, fontWeight: 'bold', color: '#222' },
  subtextStyle: { fontSize: 12, color: '#555', lineHeight: 16 },
});

const thousands = (n: number) => Math.round(n).toLocaleString('en-US');
const ok = <T extends object>(r: T | { error: string } | undefined): r is T =>
  r !== undefined && !('error' in r);

/** x position of percentile p on the HdrHistogram scale: log10(1 / (1 - p)). */
const percentileX = (p: number) => Math.log10(100 / (100 - p));
const PERCENTILE_TICKS = [50, 90, 99, 99.9, 99.99];

function percentileLabel(x: number): string {
  const p = 100 - 100 / 10 ** x;
  const nearest = PERCENTILE_TICKS.find((t) => Math.abs(percentileX(t) - x) < 1e-6);
  return `p${nearest ?? Number(p.toFixed(2))}`;
}

/** Open-loop delivery latency by percentile: one line per peer and round. */
export function openLoopChart(r: RunReport): string | undefined {
  const series: object[] = [];
  r.peers.forEach((peer, index) => {
    const rounds = peer.openLoop ?? [];
    rounds.forEach((result, round) => {
      if (!ok<OpenLoopResult>(result) || result.delivery.count === 0) return;
      const curve: Array<[number, number]> =
        result.deliveryCurve && result.deliveryCurve.length > 0
          ? result.deliveryCurve
          : [
              [50, result.delivery.p50],
              [95, result.delivery.p95],
              [99, result.delivery.p99],
            ];
      series.push({
        type: 'line',
        name: rounds.length > 1 ? `${peer.name}, round ${round + 1}` : peer.name,
        data: curve.map(([p, ms]) => [percentileX(p), Math.max(ms, 0.001)]),
        showSymbol: !result.deliveryCurve,
        symbolSize: 5,
        lineStyle: { width: 2, type: round === 0 ? 'solid' : 'dashed' },
        itemStyle: { color: peerColor(peer.name, index) },
      });
    });
  });
  if (series.length === 0) return undefined;
  const o = r.options;
  const sub = [
    `${thousands(o.rate)} msg/s on a fixed schedule over ${o.pairs} sender/receiver pairs, ${o.size}-character messages, ${o.openDurationSec} s measured per round; latency from the scheduled send time`,
    machineLine(r),
  ].join('\n');
  const ticks = PERCENTILE_TICKS.map(percentileX);
  return render(
    {
      title: title('Open loop: delivery latency by percentile', sub),
      legend: { bottom: 8, textStyle: { fontSize: 12 } },
      tooltip: { trigger: 'axis' },
      grid: { left: 80, right: 40, top: 100, bottom: 130 },
      xAxis: {
        type: 'value',
        name: 'percentile (of deliveries in the window)',
        nameLocation: 'middle',
        nameGap: 30,
        min: percentileX(50),
        max: percentileX(99.99),
        axisTick: { customValues: ticks },
        axisLabel: { customValues: ticks, formatter: (x: number) => percentileLabel(x) },
        splitLine: { show: true, lineStyle: { color: '#eee' } },
      },
      yAxis: {
        type: 'log',
        logBase: 10,
        name: 'delivery latency (ms, log scale)',
        nameLocation: 'middle',
        nameGap: 55,
        axisLabel: { formatter: (v: number) => String(Number(v.toPrecision(3))) },
        minorTick: { show: true },
        minorSplitLine: { show: true, lineStyle: { color: '#f4f4f4' } },
        splitLine: { lineStyle: { color: '#ddd' } },
      },
      series,
    },
    570,
  );
}

/** Closed-loop delivered messages/s: a bar per peer and round. */
export function throughputChart(r: RunReport): string | undefined {
  const peers = r.peers.filter((p) => (p.throughput ?? []).some((t) => ok(t)));
  if (peers.length === 0) return undefined;
  const rounds = Math.max(...peers.map((p) => p.throughput?.length ?? 0));
  const series = Array.from({ length: rounds }, (_, round) => ({
    type: 'bar',
    name: `round ${round + 1}`,
    barMaxWidth: 60,
    label: {
      show: true,
      position: 'top',
      fontSize: 11,
      formatter: (p: { value: number | null }) => (p.value === null ? '' : thousands(p.value)),
    },
    // The peer's colour; later rounds lighter (the legend's grey shows which is which).
    data: peers.map((p) => {
      const t = p.throughput?.[round];
      return {
        value: ok<ThroughputResult>(t) ? t.deliveredPerSec : null,
        itemStyle: {
          color: peerColor(p.name, r.peers.indexOf(p)),
          opacity: 1 - 0.45 * Math.min(round, 1),
        },
      };
    }),
    itemStyle: { color: round === 0 ? '#555' : '#aaa' },
  }));
  const o = r.options;
  const sub = [
    `${o.pairs} sender/receiver pairs, ${o.window} messages in flight each, ${o.size}-character messages, ${o.durationSec} s measured per round (bars: rounds 1, 2, ... left to right)`,
    machineLine(r),
  ].join('\n');
  return render(
    {
      title: title('Closed loop: delivered messages per second', sub),
      legend: { bottom: 8, textStyle: { fontSize: 12 } },
      grid: { left: 90, right: 40, top: 100, bottom: 90 },
      xAxis: {
        type: 'category',
        name: 'peer',
        nameLocation: 'middle',
        nameGap: 30,
        data: peers.map((p) => p.name),
        axisLabel: { fontSize: 12 },
      },
      yAxis: {
        type: 'value',
        name: 'delivered messages/s',
        nameLocation: 'middle',
        nameGap: 65,
        axisLabel: { formatter: (v: number) => thousands(v) },
        splitLine: { lineStyle: { color: '#eee' } },
      },
      series,
    },
    500,
  );
}

/** The soak's minutes: memory, latencies, churn and integrity, one panel each. */
export function soakChart(r: SoakReport): string {
  const o = r.options;
  const v = r.verdict;
  const m = r.minutes;
  const at = (f: (x: (typeof m)[number]) => number | undefined) =>
    m.map((x) => {
      const y = f(x);
      return [x.minute, y === undefined || !Number.isFinite(y) ? null : y];
    });
  const positive = (f: (x: (typeof m)[number]) => number | undefined) =>
    at((x) => {
      const y = f(x);
      return y === undefined || y <= 0 ? undefined : y;
    });
  // The fitted RSS line over the minutes after the warm-up, as the verdict computed it.
  const fit = m.filter((x) => x.minute > o.warmupMinutes && Number.isFinite(x.rssMiB));
  const fitSeries: Array<{ name: string; xAxisIndex: number; [key: string]: unknown }> = [];
  const s = slope(fit.map((x) => [x.minute, x.rssMiB]));
  if (s !== null && fit.length >= 2) {
    const mx = fit.reduce((a, x) => a + x.minute, 0) / fit.length;
    const my = fit.reduce((a, x) => a + x.rssMiB, 0) / fit.length;
    const first = fit[0]!.minute;
    const last = fit[fit.length - 1]!.minute;
    fitSeries.push({
      type: 'line',
      name: `RSS trend (${v.rssSlopeMiBPerHour} MiB/hour)`,
      xAxisIndex: 0,
      yAxisIndex: 0,
      data: [
        [first, my + s * (first - mx)],
        [last, my + s * (last - mx)],
      ],
      showSymbol: false,
      lineStyle: { type: 'dashed', width: 1.5, color: '#1f77b4' },
      itemStyle: { color: '#1f77b4' },
    });
  }
  const line = (
    name: string,
    panel: number,
    data: Array<Array<number | null>>,
    color: string,
    extra: object = {},
  ) => ({
    type: 'line',
    name,
    xAxisIndex: panel,
    yAxisIndex: panel,
    data,
    connectNulls: false,
    symbolSize: 5,
    lineStyle: { width: 2, color },
    itemStyle: { color },
    ...extra,
  });
  const series = [
    line(
      'RSS (MiB)',
      0,
      at((x) => x.rssMiB),
      '#1f77b4',
    ),
    line(
      'heap used (MiB)',
      0,
      at((x) => x.heapUsedMiB),
      '#17becf',
    ),
    ...fitSeries,
    line(
      'delivery p50 (ms)',
      1,
      positive((x) => x.delivery.p50),
      '#2ca02c',
    ),
    line(
      'delivery p99 (ms)',
      1,
      positive((x) => x.delivery.p99),
      '#d62728',
    ),
    line(
      'event-loop delay p99 (ms)',
      1,
      positive((x) => x.eventLoop.p99Ms),
      '#9467bd',
    ),
    line(
      'generator send lag p99 (ms)',
      1,
      positive((x) => x.sendLagP99Ms),
      '#7f7f7f',
      {
        lineStyle: { type: 'dashed', width: 1.5, color: '#7f7f7f' },
      },
    ),
    line(
      'mean commit, fsync incl. (ms)',
      1,
      positive((x) => x.commits?.meanCommitMs),
      '#8c564b',
    ),
    line(
      'connections dropped and resumed',
      2,
      at((x) => x.drops),
      '#7f7f7f',
    ),
    line(
      'lost deliveries',
      2,
      at((x) => x.lost),
      '#d62728',
      { lineStyle: { width: 3, color: '#d62728' } },
    ),
    line(
      'duplicated',
      2,
      at((x) => x.duplicated),
      '#ff7f0e',
      { lineStyle: { type: 'dashed', width: 2, color: '#ff7f0e' } },
    ),
  ];
  const verdictText = [
    `RSS trend ${v.rssSlopeMiBPerHour ?? 'n/a'} MiB/hour after minute ${o.warmupMinutes}${v.memoryOk === null ? ' (too few minutes for a verdict)' : ''}`,
    `lost ${r.integrity.lost}, duplicated ${r.integrity.duplicateFrames + r.integrity.duplicateAcks}`,
    `max/median minute p99 ${v.p99Ratio ?? 'n/a'}`,
  ].join(' · ');
  const sub = [
    `${thousands(o.rate)} msg/s over ${thousands(o.connections)} connections (${thousands(o.users)} users), ${(o.churn * 100).toFixed(1)}% of them dropped and resumed each minute, ${o.minutes} min`,
    verdictText,
    machineLine(r),
  ].join('\n');
  const top = 150;
  const panel = 190;
  const gap = 70;
  const grids = [0, 1, 2].map((i) => ({
    left: 90,
    right: 260,
    top: top + i * (panel + gap),
    height: panel,
  }));
  const maxMinute = Math.max(1, ...m.map((x) => x.minute));
  const xAxes = grids.map((_, i) => ({
    type: 'value',
    gridIndex: i,
    min: 0,
    max: maxMinute,
    minInterval: 1,
    name: i === 2 ? 'minute of the run' : '',
    nameLocation: 'middle',
    nameGap: 28,
    splitLine: { show: true, lineStyle: { color: '#eee' } },
  }));
  const yNames = ['memory (MiB)', 'latency (ms, log scale)', 'count per minute'];
  const yAxes = grids.map((_, i) => ({
    type: i === 1 ? 'log' : 'value',
    gridIndex: i,
    name: yNames[i],
    nameLocation: 'middle',
    nameGap: 60,
    scale: i === 0,
    minInterval: i === 2 ? 1 : undefined,
    axisLabel: { formatter: (x: number) => String(Number(x.toPrecision(4))) },
    splitLine: { lineStyle: { color: '#eee' } },
  }));
  const legend = [0, 1, 2].map((i) => ({
    orient: 'vertical',
    right: 10,
    top: top + i * (panel + gap) + 10,
    textStyle: { fontSize: 12 },
    data: series.filter((x) => x.xAxisIndex === i).map((x) => x.name),
  }));
  return render(
    {
      title: title('Soak: per-minute server memory, latency and integrity', sub),
      legend,
      grid: grids,
      xAxis: xAxes,
      yAxis: yAxes,
      series,
    },
    top + 3 * panel + 2 * gap + 60,
  );
}

function isSoak(json: unknown): json is SoakReport {
  return typeof json === 'object' && json !== null && (json as { kind?: unknown }).kind === 'soak';
}

/** Every chart the results hold. */
export function renderCharts(json: RunReport | SoakReport): Chart[] {
  if (isSoak(json)) return [{ name: 'soak', svg: soakChart(json) }];
  const out: Chart[] = [];
  const open = openLoopChart(json);
  if (open) out.push({ name: 'open-loop', svg: open });
  const tp = throughputChart(json);
  if (tp) out.push({ name: 'throughput', svg: tp });
  return out;
}

/**
 * Writes `<base>-<chart>.svg` for every chart of the results (base: the results file's path
 * without `.json`), and with `latest` copies each to `latest-<chart>.svg` in the same directory.
 * Returns the paths written.
 */
export function writeCharts(
  json: RunReport | SoakReport,
  base: string,
  options: { latest?: boolean } = {},
): string[] {
  const written: string[] = [];
  for (const chart of renderCharts(json)) {
    const file = `${base}-${chart.name}.svg`;
    fs.writeFileSync(file, chart.svg);
    written.push(file);
    if (options.latest) {
      const latest = path.join(path.dirname(base), `latest-${chart.name}.svg`);
      fs.writeFileSync(latest, chart.svg);
      written.push(latest);
    }
  }
  return written;
}
