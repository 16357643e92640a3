// The record of a soak run (`npm run bench:soak`): settings, machine, one row per minute, the
// integrity totals and the verdict; and its reading in Markdown.
import type { Latency } from './stats.js';
import type { CommitStats } from '../scenarios/throughput.js';

export interface SoakOptions {
  minutes: number;
  /** Messages per second in total, open loop. */
  rate: number;
  connections: number;
  users: number;
  /** Share of the connections (0..1) that drop and resume each minute. */
  churn: number;
  /** A dropped connection stays away for a random time in [downMinSec, downMaxSec]. */
  downMinSec: number;
  downMaxSec: number;
  /** Characters of content per message. */
  size: number;
  /** Receivers per sender: each user writes to this many contacts in turn. */
  contacts: number;
  /** Minutes left out of the memory fit. */
  warmupMinutes: number;
  /** Seconds to wait after the last send for every device to catch up. */
  drainSec: number;
  /** Verdict thresholds. */
  maxRssSlopeMiBPerHour: number;
  maxP99Ratio: number;
  pin: boolean;
  build: boolean;
  /** Extra `node` flags for the server (e.g. --cpu-prof), space-separated. */
  serverNodeArgs?: string[];
}

export interface SoakMinute {
  /** 1-based: the minute [minute - 1, minute) after sending started. */
  minute: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  /** Open WebSockets on the server at the end of the minute (its gauge). */
  serverConnections: number;
  /** Messages scheduled in this minute. */
  scheduled: number;
  /** Acks received in this minute (any message). */
  acks: number;
  /** Message frames received in this minute, live and replayed, every device. */
  frames: number;
  /** Delivery latency to the receiver's connections, of this minute's messages sent live and received live. */
  delivery: Latency;
  /** Server event-loop delay over the minute (prom-client's monitorEventLoopDelay, reset by each scrape). */
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
  commits?: CommitStats;
  /** Connections dropped (and resumed) in this minute. */
  drops: number;
  /** Message frames received in a replay (between a resume and its `synced`). */
  replayed: number;
  /** Messages sent again with their clientId after a resume (unacked at the drop, or scheduled while away). */
  resent: number;
  /** Of this minute's messages: deliveries (acks at the sending device included) never seen. */
  lost: number;
  /** Frames or acks seen twice by a device in this minute. */
  duplicated: number;
  /** How late the generator sent against its schedule, p99 (its own health: a late send inflates the delivery latency). */
  sendLagP99Ms?: number;
  serverCpuPct: number;
  generatorCpuPct: number;
  /** The rest of the machine (kernel and other processes), % of one core: a noise indicator. */
  otherCpuPct?: number;
}

export interface SoakIntegrity {
  messages: number;
  /** Per device: every message of its user's stream, once (own sends as their ack). */
  expectedDeliveries: number;
  seenDeliveries: number;
  lost: number;
  duplicateFrames: number;
  duplicateAcks: number;
  unacked: number;
  misrouted: number;
  /** Own messages that came back as frames (after a resume): expected by the protocol, not duplicates. */
  ownEchoes: number;
  errors: Record<string, number>;
  /** Resumes that failed their handshake and were retried. */
  failedResumes: number;
  /** Connections that closed without being dropped by the soak. */
  unexpectedCloses: number;
}

export interface SoakVerdict {
  /** Slope of a least-squares line through RSS over the minutes after the warm-up. */
  rssSlopeMiBPerHour: number | null;
  heapSlopeMiBPerHour: number | null;
  fitMinutes: number;
  memoryOk: boolean | null;
  integrityOk: boolean;
  /** Max minute delivery p99 / median minute delivery p99. */
  p99Ratio: number | null;
  p99Ok: boolean | null;
}

export interface SoakReport {
  kind: 'soak';
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  command: string;
  commit: string;
  dirty: boolean;
  node: string;
  cpuModel: string;
  cores: number;
  kernel: string;
  pinning: { enabled: boolean; note: string };
  fdLimit: { soft: number; hard: number; note: string };
  options: SoakOptions;
  setupSec: number;
  sourceAddresses: number;
  minutes: SoakMinute[];
  /** Over the whole run. */
  delivery: Latency;
  integrity: SoakIntegrity;
  verdict: SoakVerdict;
  drainSec: number;
  problems: string[];
}

/** Least-squares slope of y over x (per unit of x); null with fewer than two points. */
export function slope(points: Array<[number, number]>): number | null {
  const pts = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length < 2) return null;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const [x, y] of pts) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

export function median(xs: number[]): number | null {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = s.length >> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Fewer minutes after the warm-up give a slope but no memory verdict: a few GC cycles move it. */
export const MIN_FIT_MINUTES = 5;

const r2 = (n: number | null) => (n === null ? null : Math.round(n * 100) / 100);

export function verdict(
  minutes: SoakMinute[],
  integrity: SoakIntegrity,
  o: SoakOptions,
): SoakVerdict {
  const fit = minutes.filter((m) => m.minute > o.warmupMinutes);
  const perHour = (f: (m: SoakMinute) => number) => {
    const s = slope(fit.map((m) => [m.minute, f(m)]));
    return s === null ? null : s * 60;
  };
  const rss = r2(perHour((m) => m.rssMiB));
  const p99s = minutes.map((m) => m.delivery.p99).filter(Number.isFinite);
  const med = median(p99s);
  const ratio = med && p99s.length > 0 ? r2(Math.max(...p99s) / med) : null;
  return {
    rssSlopeMiBPerHour: rss,
    heapSlopeMiBPerHour: r2(perHour((m) => m.heapUsedMiB)),
    fitMinutes: fit.length,
    memoryOk: rss === null || fit.length < MIN_FIT_MINUTES ? null : rss <= o.maxRssSlopeMiBPerHour,
    integrityOk:
      integrity.lost === 0 &&
      integrity.duplicateFrames === 0 &&
      integrity.duplicateAcks === 0 &&
      integrity.unacked === 0 &&
      integrity.misrouted === 0 &&
      Object.keys(integrity.errors).length === 0,
    p99Ratio: ratio,
    p99Ok: ratio === null ? null : ratio <= o.maxP99Ratio,
  };
}

const n0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) =>
  !Number.isFinite(n) ? 'n/a' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
const mib = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const yesNo = (b: boolean | null) =>
  b === null
    ? `not enough minutes (at least ${MIN_FIT_MINUTES} after the warm-up)`
    : b
      ? 'yes'
      : 'NO';
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

export function soakMarkdown(r: SoakReport): string {
  const o = r.options;
  const v = r.verdict;
  const i = r.integrity;
  const L: string[] = [];
  L.push(`# Soak ${r.startedAt} (${r.commit}${r.dirty ? ', uncommitted changes' : ''})`, '');
  L.push(`- Command: \`${r.command}\``);
  L.push(`- Node ${r.node}, ${r.cpuModel}, ${r.cores} cores, Linux ${r.kernel}`);
  L.push(
    `- Pinning: ${r.pinning.enabled ? 'server on core 0, load generator on core 1' : 'off'}${r.pinning.note ? ` (${r.pinning.note})` : ''}; open files ${r.fdLimit.soft}${r.fdLimit.note ? ` (${r.fdLimit.note})` : ''}`,
  );
  L.push(
    `- Settings: ${o.minutes} min at ${n0(o.rate)} msg/s, ${n0(o.connections)} connections of ${n0(o.users)} users (${r.sourceAddresses} source addresses), ${o.contacts} contacts per user, ${o.size}-character content; churn ${(o.churn * 100).toFixed(1)}% of the connections a minute, each away ${o.downMinSec}-${o.downMaxSec} s and resumed with \`?after=<last id>\`; memory fit after minute ${o.warmupMinutes}`,
  );
  L.push(
    `- Wall time ${r.durationSec} s (users and connections ready in ${r.setupSec} s, drain ${r.drainSec} s)`,
  );
  L.push('', '## Verdict', '');
  L.push(row(['goal', 'measured', 'met']));
  L.push(row(['---', '---', '---']));
  L.push(
    row([
      `no upward memory trend after minute ${o.warmupMinutes} (RSS slope <= ${o.maxRssSlopeMiBPerHour} MiB/hour)`,
      `RSS ${v.rssSlopeMiBPerHour ?? 'n/a'} MiB/hour, heap used ${v.heapSlopeMiBPerHour ?? 'n/a'} MiB/hour (fit over ${v.fitMinutes} minutes)`,
      yesNo(v.memoryOk),
    ]),
  );
  L.push(
    row([
      'no lost or duplicated message',
      `lost ${i.lost}, duplicated ${i.duplicateFrames + i.duplicateAcks}, unacked ${i.unacked}, misrouted ${i.misrouted}, error frames ${Object.values(i.errors).reduce((a, b) => a + b, 0)}`,
      v.integrityOk ? 'yes' : 'NO',
    ]),
  );
  L.push(
    row([
      `p99 steady (max minute p99 / median minute p99 <= ${o.maxP99Ratio})`,
      `${v.p99Ratio ?? 'n/a'}`,
      yesNo(v.p99Ok),
    ]),
  );
  L.push('', '## Per minute', '');
  L.push(
    "Delivery latency: from the scheduled send time to the frame at each of the receiver's connections, for messages sent and received live (not held or replayed across a resume). Event-loop delay: the server's `nodejs_eventloop_lag_p99_seconds` over the minute. Commit: the group commit from `/metrics` (fsync included).",
    '',
  );
  L.push(
    row([
      'minute',
      'RSS MiB',
      'heap used / total MiB',
      'delivery p50 / p99 / max ms',
      'generator send lag p99 ms',
      'event loop p99 / max ms',
      'commits/s, mean batch, mean ms',
      'msgs',
      'frames',
      'drops',
      'replayed / resent',
      'lost / dup',
      'server / generator / other CPU',
    ]),
  );
  L.push(row(Array(13).fill('---')));
  for (const m of r.minutes) {
    L.push(
      row([
        m.minute,
        mib(m.rssMiB),
        `${mib(m.heapUsedMiB)} / ${mib(m.heapTotalMiB)}`,
        `${ms(m.delivery.p50)} / ${ms(m.delivery.p99)} / ${ms(m.delivery.max)}`,
        ms(m.sendLagP99Ms ?? NaN),
        `${ms(m.eventLoop.p99Ms)} / ${ms(m.eventLoop.maxMs)}`,
        m.commits
          ? `${n0(m.commits.commitsPerSec)}, ${m.commits.meanBatch}, ${m.commits.meanCommitMs}`
          : 'n/a',
        n0(m.scheduled),
        n0(m.frames),
        m.drops,
        `${n0(m.replayed)} / ${n0(m.resent)}`,
        `${m.lost} / ${m.duplicated}`,
        `${m.serverCpuPct}% / ${m.generatorCpuPct}% / ${m.otherCpuPct ?? 'n/a'}%`,
      ]),
    );
  }
  L.push('', '## Integrity', '');
  L.push(
    `${n0(i.messages)} messages; ${n0(i.expectedDeliveries)} deliveries expected (every connection gets each message of its user's stream once, its own sends as their ack), ${n0(i.seenDeliveries)} seen. Lost ${i.lost}, duplicate frames ${i.duplicateFrames}, duplicate acks ${i.duplicateAcks}, unacked ${i.unacked}, misrouted ${i.misrouted}; own messages back as frames after a resume (expected, not counted as duplicates) ${n0(i.ownEchoes)}; failed resume handshakes (retried) ${i.failedResumes}; unexpected closes ${i.unexpectedCloses}.`,
  );
  if (Object.keys(i.errors).length > 0) {
    L.push('', `Error frames: ${JSON.stringify(i.errors)}`);
  }
  L.push(
    '',
    `Whole run: delivery p50 / p95 / p99 / max ${ms(r.delivery.p50)} / ${ms(r.delivery.p95)} / ${ms(r.delivery.p99)} / ${ms(r.delivery.max)} ms over ${n0(r.delivery.count)} live deliveries.`,
  );
  if (r.problems.length > 0) {
    L.push('', '## Problems', '');
    for (const p of r.problems) L.push(`- ${p}`);
  }
  L.push('');
  return L.join('\n');
}
