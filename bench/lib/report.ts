// The record of a run (JSON, kept as it is) and its reading (Markdown): settings, machine, one
// table per scenario with a row per peer (and round), ratios against the relays, integrity.
import { isChat, type Options, type PeerName } from './options.js';
import type { Accounting } from './tracker.js';
import type { Latency } from './stats.js';
import type { ThroughputResult } from '../scenarios/throughput.js';
import type { OpenLoopResult } from '../scenarios/open-loop.js';
import type { IdleResult } from '../scenarios/idle.js';
import type { AccountsResult, HttpStats } from '../scenarios/accounts.js';
import type { GroupResult, GroupRound } from '../scenarios/group.js';
import type { DiskFloor } from './disk.js';

export interface Failure {
  error: string;
}

export interface PeerReport {
  name: PeerName;
  description: string;
  pid?: number;
  startError?: string;
  setupSec?: number;
  /** Set when the process ended before the suite stopped it. */
  crashed?: string;
  /** One entry per round. */
  throughput?: Array<ThroughputResult | Failure>;
  openLoop?: Array<OpenLoopResult | Failure>;
  /** One entry per round, each with a result per group size. */
  group?: Array<GroupRound | Failure>;
  idle?: IdleResult | Failure;
  accounts?: AccountsResult | Failure;
}

export interface Ratio {
  what: string;
  /** From the mean over rounds. */
  value: number | null;
  perRound: Array<number | null>;
  note: string;
}

export interface RunReport {
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
  pinning: { enabled: boolean; serverCore: number | null; generatorCpus: string; note: string };
  fdLimit: { soft: number; hard: number; note: string };
  options: Options;
  peers: PeerReport[];
  /**
   * The disk's own latency, one entry per round, measured right after that round's open loop
   * (bench/micro/disk-floor.ts): a bare commit loop and an ideal group commit at the same rate.
   */
  disk?: Array<DiskFloor | Failure>;
  skipped: Array<{ peer: string; reason: string }>;
  ratios: Ratio[];
  integrity: Array<{ peer: string; scenario: string; problems: string }>;
  problems: string[];
}

export const ok = <T extends object>(r: T | Failure | undefined): r is T =>
  r !== undefined && !('error' in r);

const succeeded = <T extends object>(rs: Array<T | Failure> | undefined): T[] =>
  (rs ?? []).filter((r): r is T => ok(r));

const mean = (xs: number[]): number | undefined =>
  xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length;

function divide(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) {
    return null;
  }
  return Math.round((a / b) * 1000) / 1000;
}

export function ratios(r: RunReport): Ratio[] {
  const out: Ratio[] = [];
  const find = (name: PeerName) => r.peers.find((p) => p.name === name);
  const pairRounds = <T>(a: Array<T | Failure> | undefined, b: Array<T | Failure> | undefined) =>
    Array.from({ length: Math.max(a?.length ?? 0, b?.length ?? 0) }, (_, i) => [a?.[i], b?.[i]]);
  const LABEL: Record<PeerName, string> = {
    chat: 'chat (durable)',
    'chat-postgres-redis': 'chat on PostgreSQL + Redis (durable)',
    'ws-relay': 'ws relay',
    'socketio-relay': 'socket.io',
  };
  const comparisons: Array<[PeerName, PeerName]> = [
    ['chat', 'ws-relay'],
    ['chat', 'socketio-relay'],
    ['chat-postgres-redis', 'ws-relay'],
    ['chat-postgres-redis', 'socketio-relay'],
    ['chat-postgres-redis', 'chat'],
  ];
  for (const [mine, other] of comparisons) {
    const chat = find(mine);
    const o = find(other);
    if (!chat || !o) continue;
    const label = LABEL[other];
    const ct = succeeded(chat.throughput);
    const ot = succeeded(o.throughput);
    const bound = ot.filter((t) => t.generatorCpu.pct >= 90).length;
    // A scenario neither ran (e.g. `--scenarios group`) gives no row rather than n/a.
    if (chat.throughput || o.throughput)
      out.push({
        what: `closed-loop msgs/s: ${LABEL[mine]} / ${label}`,
        value: divide(
          mean(ct.map((t) => t.deliveredPerSec)),
          mean(ot.map((t) => t.deliveredPerSec)),
        ),
        perRound: pairRounds(chat.throughput, o.throughput).map(([a, b]) =>
          ok(a) && ok(b) ? divide(a.deliveredPerSec, b.deliveredPerSec) : null,
        ),
        note:
          bound > 0
            ? `the ${label} runs used >= 90% of the generator core: that peer may be faster than measured, so the true ratio may be lower`
            : 'higher is better for chat',
      });
    if (chat.openLoop || o.openLoop)
      out.push({
        what: `open-loop delivery p99: ${LABEL[mine]} / ${label}`,
        value: divide(
          mean(succeeded(chat.openLoop).map((t) => t.delivery.p99)),
          mean(succeeded(o.openLoop).map((t) => t.delivery.p99)),
        ),
        perRound: pairRounds(chat.openLoop, o.openLoop).map(([a, b]) =>
          ok(a) && ok(b) ? divide(a.delivery.p99, b.delivery.p99) : null,
        ),
        note: 'latency: lower is better for chat; tails are the noisiest figure',
      });
    const ci = ok(chat.idle) ? chat.idle : undefined;
    const oi = ok(o.idle) ? o.idle : undefined;
    if (ci && oi) {
      out.push({
        what: `idle RSS per connection: ${LABEL[mine]} / ${label}`,
        value: divide(ci.kibPerConnection, oi.kibPerConnection),
        perRound: [],
        note: 'memory: lower is better for chat',
      });
      out.push({
        what: `handshakes/s: ${LABEL[mine]} / ${label}`,
        value: divide(ci.handshakesPerSec, oi.handshakesPerSec),
        perRound: [],
        note: 'higher is better for chat (chat verifies the JWT and reads the session from its store)',
      });
    }
  }
  for (const mine of ['chat', 'chat-postgres-redis'] as const) {
    const chat = find(mine);
    const o = find('socketio-relay');
    if (!chat?.group || !o?.group) continue;
    for (const size of r.options.groupSizes) {
      const at = (g: GroupRound | Failure | undefined) =>
        ok(g) ? g.bySize.find((x) => x.members === size) : undefined;
      const rounds = pairRounds(chat.group, o.group).map(([a, b]) => [at(a), at(b)] as const);
      const both = rounds.filter((x): x is readonly [GroupResult, GroupResult] => !!x[0] && !!x[1]);
      const perRound = (f: (g: GroupResult) => number) =>
        rounds.map(([a, b]) => (a && b ? divide(f(a), f(b)) : null));
      const meanOf = (side: 0 | 1, f: (g: GroupResult) => number) =>
        mean(both.map((x) => f(x[side])));
      // Delivered/s counts arrivals in the window: below the offered rate, the peer fell behind;
      // above it, a backlog from before the window (a stall in the warm-up) arrived in it.
      const offered = both[0]?.[0].offeredDeliveriesPerSec ?? NaN;
      const who = (test: (g: GroupResult) => boolean) => [
        ...new Set(
          both.flatMap(([a, b]) =>
            [test(a) ? LABEL[mine] : '', test(b) ? 'socket.io' : ''].filter(Boolean),
          ),
        ),
      ];
      const behind = who((g) => g.deliveredPerSec < 0.98 * g.offeredDeliveriesPerSec);
      const ahead = who((g) => g.deliveredPerSec > 1.02 * g.offeredDeliveriesPerSec);
      const notes: string[] = [];
      if (behind.length > 0) notes.push(`below 98% of the offered rate: ${behind.join(', ')}`);
      if (ahead.length > 0)
        notes.push(
          `above 102% of the offered rate: ${ahead.join(', ')} (a backlog from a stall before the window arrived in it)`,
        );
      if (notes.length === 0)
        notes.push(
          `both delivered the offered ${n0(offered)}/s (within 2%) in every round: 1.0 means both kept up, not that they are equally fast (see server CPU per delivery)`,
        );
      if (both.some(([, b]) => b.generatorCpu.pct >= 90))
        notes.push(
          'the socket.io runs used >= 90% of the generator core: it may be faster than measured',
        );
      const rate = (g: GroupResult) => g.deliveredPerSec;
      out.push({
        what: `group deliveries/s, ${size} members: ${LABEL[mine]} / socket.io`,
        value: divide(meanOf(0, rate), meanOf(1, rate)),
        perRound: perRound(rate),
        note: notes.join('; '),
      });
      out.push({
        what: `group delivery p99, ${size} members: ${LABEL[mine]} / socket.io`,
        value: divide(
          meanOf(0, (g) => g.delivery.p99),
          meanOf(1, (g) => g.delivery.p99),
        ),
        perRound: perRound((g) => g.delivery.p99),
        note: 'latency from the scheduled send time: lower is better for chat',
      });
      out.push({
        what: `group server CPU per delivery, ${size} members: ${LABEL[mine]} / socket.io`,
        value: divide(
          meanOf(0, (g) => g.serverCpuUsPerDelivery),
          meanOf(1, (g) => g.serverCpuUsPerDelivery),
        ),
        perRound: perRound((g) => g.serverCpuUsPerDelivery),
        note: 'cost: lower is better for chat (chat also stores, fsyncs and sends delivered receipts)',
      });
    }
  }
  // Chat's open-loop tail against the disk's own, round by round (measured right after it).
  const chat = find('chat');
  if (chat?.openLoop && r.disk) {
    const disk = r.disk;
    const rounds = Array.from(
      { length: Math.max(chat.openLoop.length, disk.length) },
      (_, i) => [chat.openLoop?.[i], disk[i]] as const,
    );
    for (const [what, pick, note] of [
      [
        'open-loop delivery p99: chat (durable) / disk commit p99 (bare fsynced commit loop)',
        (d: DiskFloor) => d.commit.p99,
        'goal <= 2: the disk counts a stall once, a message stream once per message sent during it',
      ],
      [
        'open-loop delivery p99: chat (durable) / disk floor p99 (ideal group commit, same rate)',
        (d: DiskFloor) => d.floor.p99,
        'the part of the tail that is the server, not the disk (1 = as good as the disk allows)',
      ],
    ] as const) {
      const perRound = rounds.map(([a, b]) =>
        ok(a) && ok(b) ? divide(a.delivery.p99, pick(b)) : null,
      );
      out.push({
        what,
        value: divide(
          mean(succeeded(chat.openLoop).map((t) => t.delivery.p99)),
          mean(succeeded(r.disk).map(pick)),
        ),
        perRound,
        note,
      });
    }
  }
  return out;
}

/** Every non-zero loss, duplicate, unacked, misrouted, reordered or error count. */
export function integrity(r: RunReport): RunReport['integrity'] {
  const out: RunReport['integrity'] = [];
  const check = (name: string, scenario: string, a: Accounting, closes: number) => {
    const parts: string[] = [];
    const add = (label: string, n: number) => n > 0 && parts.push(`${label} ${n}`);
    add('lost', a.lost);
    add('unacked', a.unacked);
    add('duplicate deliveries', a.duplicateDeliveries);
    add('duplicate acks', a.duplicateAcks);
    add('misrouted', a.misrouted);
    add('reordered', a.reordered);
    for (const [code, n] of Object.entries(a.errors)) add(`error ${code}`, n);
    add('unexpected closes', closes);
    if (parts.length > 0) out.push({ peer: name, scenario, problems: parts.join(', ') });
  };
  for (const p of r.peers) {
    (p.throughput ?? []).forEach((t, i) => {
      if (ok(t)) check(p.name, `throughput round ${i + 1}`, t.accounting, t.unexpectedCloses);
      else out.push({ peer: p.name, scenario: `throughput round ${i + 1}`, problems: t.error });
    });
    (p.openLoop ?? []).forEach((t, i) => {
      if (ok(t)) check(p.name, `open-loop round ${i + 1}`, t.accounting, t.unexpectedCloses);
      else out.push({ peer: p.name, scenario: `open-loop round ${i + 1}`, problems: t.error });
    });
    (p.group ?? []).forEach((g, i) => {
      if (!ok(g)) {
        out.push({ peer: p.name, scenario: `group round ${i + 1}`, problems: g.error });
        return;
      }
      for (const s of g.bySize) {
        check(p.name, `group ${s.members} members round ${i + 1}`, s.accounting, 0);
      }
      if (g.unexpectedCloses > 0 || g.strays > 0) {
        out.push({
          peer: p.name,
          scenario: `group round ${i + 1}`,
          problems: `unexpected closes ${g.unexpectedCloses}, frames between sizes ${g.strays}`,
        });
      }
    });
    if (p.idle && !ok(p.idle)) out.push({ peer: p.name, scenario: 'idle', problems: p.idle.error });
    if (ok(p.idle) && (p.idle.failed > 0 || p.idle.unexpectedCloses > 0)) {
      out.push({
        peer: p.name,
        scenario: 'idle',
        problems: `failed handshakes ${p.idle.failed} (${Object.keys(p.idle.failures).join('; ')}), unexpected closes ${p.idle.unexpectedCloses}`,
      });
    }
    if (p.accounts && !ok(p.accounts)) {
      out.push({ peer: p.name, scenario: 'accounts', problems: p.accounts.error });
    }
    if (ok(p.accounts)) {
      check(p.name, 'history seed', p.accounts.history.seedAccounting, 0);
      if (p.accounts.logins.failed > 0 || p.accounts.history.failed > 0) {
        out.push({
          peer: p.name,
          scenario: 'accounts',
          problems: `failed logins ${p.accounts.logins.failed}, failed history pages ${p.accounts.history.failed}`,
        });
      }
    }
  }
  return out;
}

const n0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) =>
  !Number.isFinite(n) ? 'n/a' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
const lat = (l: Latency, keys: Array<keyof Latency>) => keys.map((k) => ms(l[k])).join(' / ');
const pct = (c: { pct: number }) => (Number.isFinite(c.pct) ? `${c.pct}%` : 'n/a');
const acc = (a: Accounting) =>
  `${a.lost} / ${a.duplicateDeliveries + a.duplicateAcks} / ${a.unacked} / ${Object.values(a.errors).reduce((x, y) => x + y, 0)}`;
/**
 * Which kind of disk the run got: a fast one (a bare fsynced commit's median under 1 ms, as on
 * local NVMe) or a slow one (network or throttled volumes: 2-5 ms). Stalls are reported apart:
 * the tail of the commit loop says whether the disk stalled during the run.
 */
function diskKind(disk: Array<DiskFloor | Failure>): string {
  const d = disk.filter((x): x is DiskFloor => ok(x));
  if (d.length === 0) return 'Disk: not measured.';
  const p50 = Math.max(...d.map((x) => x.commit.p50));
  const max = Math.max(...d.map((x) => Math.max(x.commit.max, x.floor.max)));
  return `Disk: **${p50 < 1 ? 'fast' : 'slow'}** (median fsynced commit ${p50} ms)${max >= 50 ? `; it **stalled** during the run (a message waited ${max} ms for its commit)` : ''}.`;
}

const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
const header = (cells: string[]) => [row(cells), row(cells.map(() => '---'))];

/** Rows for results kept per round: "peer" or "peer #2", in round order then peer order. */
function perRound<T extends object>(
  peers: PeerReport[],
  get: (p: PeerReport) => Array<T | Failure> | undefined,
  columns: number,
  cells: (name: string, r: T) => Array<string | number>,
): string[] {
  const rounds = Math.max(0, ...peers.map((p) => get(p)?.length ?? 0));
  const lines: string[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const p of peers) {
      const r = get(p)?.[i];
      if (r === undefined) continue;
      const name = rounds > 1 ? `${p.name} #${i + 1}` : p.name;
      if (ok(r)) lines.push(row(cells(name, r)));
      else lines.push(row([name, `failed: ${r.error}`, ...Array(columns - 2).fill('')]));
    }
  }
  return lines;
}

export function markdown(r: RunReport): string {
  const o = r.options;
  const L: string[] = [];
  L.push(`# Benchmark ${r.startedAt} (${r.commit}${r.dirty ? ', uncommitted changes' : ''})`, '');
  L.push(`- Command: \`${r.command}\`${o.quick ? ' (quick smoke run)' : ''}`);
  L.push(`- Node ${r.node}, ${r.cpuModel}, ${r.cores} cores, Linux ${r.kernel}`);
  L.push(
    `- Pinning: ${r.pinning.enabled ? `servers on core ${r.pinning.serverCore}, load generator on CPU ${r.pinning.generatorCpus}` : 'off'}${r.pinning.note ? ` (${r.pinning.note})` : ''}`,
  );
  L.push(
    `- Open files limit: ${r.fdLimit.soft} (hard ${r.fdLimit.hard})${r.fdLimit.note ? `; ${r.fdLimit.note}` : ''}`,
  );
  L.push(`- Wall time: ${r.durationSec} s`);
  L.push(
    `- Settings: N=${o.pairs} pairs, W=${o.window} in flight, ${o.size}-character content; closed loop ${o.warmupSec} s warm-up + T=${o.durationSec} s; open loop ${n0(o.rate)} msg/s, ${o.openWarmupSec} s + ${o.openDurationSec} s; ${o.rounds} round(s) of both; idle K=${n0(o.idle)} (${o.idleConcurrency} handshakes in flight; ${o.idlePeers.join(', ')}); ${o.logins} logins x${o.loginConcurrency}; ${o.historyRequests} history pages x${o.historyConcurrency}`,
  );
  L.push('', 'Peers:');
  for (const p of r.peers) {
    const extra = `${p.startError ? ` — did not start: ${p.startError}` : ''}${p.crashed ? ` — CRASHED: ${p.crashed}` : ''}`;
    L.push(`- **${p.name}**: ${p.description}${extra}`);
  }
  for (const s of r.skipped) L.push(`- **${s.peer}**: skipped: ${s.reason}`);
  L.push('');
  L.push(
    'Latencies in milliseconds. CPU in % of one core over the measured window; "other CPU" is the rest of the machine (kernel network work for the loopback traffic included, and anything else running): high values mean a noisy measurement.',
  );
  L.push('Integrity columns: lost / duplicated / unacked / error frames (all must be 0).');

  const tp = r.peers.filter((p) => p.throughput);
  if (tp.length > 0) {
    L.push(
      '',
      `## 1. Closed-loop throughput (N=${o.pairs}, W=${o.window}, T=${o.durationSec} s)`,
      '',
    );
    L.push(
      ...header([
        'peer',
        'delivered msg/s',
        'ack p50 / p95 / p99 / max',
        'delivery p50 / p95 / p99 / max',
        'server CPU',
        'generator CPU',
        'other CPU',
        'lost / dup / unacked / err',
      ]),
    );
    L.push(
      ...perRound(
        tp,
        (p) => p.throughput,
        8,
        (name, t) => [
          name,
          n0(t.deliveredPerSec),
          lat(t.ack, ['p50', 'p95', 'p99', 'max']),
          lat(t.delivery, ['p50', 'p95', 'p99', 'max']),
          pct(t.serverCpu),
          pct(t.generatorCpu),
          pct(t.otherCpu),
          acc(t.accounting),
        ],
      ),
    );
  }
  const ol = r.peers.filter((p) => p.openLoop);
  if (ol.length > 0) {
    L.push('', `## 2. Open loop at ${n0(o.rate)} msg/s (latency from the scheduled send time)`, '');
    L.push(
      ...header([
        'peer',
        'sent/s',
        'delivered/s',
        'delivery p50 / p99 / max',
        'ack p50 / p99',
        'send lag p99',
        'server CPU',
        'generator CPU',
        'other CPU',
        'lost / dup / unacked / err',
      ]),
    );
    L.push(
      ...perRound(
        ol,
        (p) => p.openLoop,
        10,
        (name, t) => [
          name,
          n0(t.sentPerSec),
          n0(t.deliveredPerSec),
          lat(t.delivery, ['p50', 'p99', 'max']),
          lat(t.ack, ['p50', 'p99']),
          ms(t.sendLag.p99),
          pct(t.serverCpu),
          pct(t.generatorCpu),
          pct(t.otherCpu),
          acc(t.accounting),
        ],
      ),
    );
  }
  const disk = r.disk ?? [];
  if (disk.length > 0) {
    L.push(
      '',
      `### The disk's own latency (measured right after each round's open loop, on the server core)`,
      '',
      diskKind(disk),
      '',
      `A bare loop of fsynced 4-row SQLite commits (WAL, synchronous=FULL), back to back; then the same commits fed by an open loop at ${n0(o.rate)} msg/s, each taking every message already due (an ideal group commit: no network, parsing or other work), latency from the scheduled time (bench/micro/disk-floor.ts).`,
      '',
    );
    L.push(
      ...header([
        'round',
        'commit p50 / p99 / max',
        'commits/s',
        `ideal group commit p50 / p99 / max`,
        'commits (mean batch)',
      ]),
    );
    disk.forEach((d, i) =>
      L.push(
        ok(d)
          ? row([
              `#${i + 1}`,
              lat(d.commit, ['p50', 'p99', 'max']),
              n0(d.commit.perSecond),
              lat(d.floor, ['p50', 'p99', 'max']),
              `${n0(d.floor.commits)} (${d.floor.meanBatch})`,
            ])
          : row([`#${i + 1}`, `failed: ${d.error}`, '', '', '']),
      ),
    );
  }
  const id = r.peers.filter((p) => p.idle);
  if (id.length > 0) {
    L.push('', `## 3. Idle connections (K=${n0(o.idle)})`, '');
    L.push(
      ...header([
        'peer',
        'opened / failed',
        'handshakes/s',
        'server RSS before → after (MiB)',
        'KiB per connection',
        'server CPU (handshakes)',
        'generator CPU',
      ]),
    );
    for (const p of id) {
      const t = p.idle;
      if (!ok(t)) {
        L.push(row([p.name, `failed: ${t?.error}`, '', '', '', '', '']));
        continue;
      }
      L.push(
        row([
          p.name,
          `${n0(t.opened)} / ${n0(t.failed)}`,
          n0(t.handshakesPerSec),
          `${(t.rssBeforeKiB / 1024).toFixed(1)} → ${(t.rssAfterKiB / 1024).toFixed(1)}`,
          t.kibPerConnection.toFixed(1),
          pct(t.serverCpu),
          pct(t.generatorCpu),
        ]),
      );
    }
    const memory = id.flatMap((p) => (ok(p.idle) ? [[p.name, p.idle] as const] : []));
    L.push('');
    for (const [name, t] of memory) {
      const heap =
        t.heapBeforeMiB !== undefined && t.heapAfterMiB !== undefined
          ? `server V8 heap in use ${t.heapBeforeMiB} → ${t.heapAfterMiB} MiB (${t.heapKiBPerConnection?.toFixed(1)} KiB per connection); `
          : '';
      L.push(
        `- ${name}: ${heap}generator RSS ${t.generatorRssBeforeMiB} → ${t.generatorRssAfterMiB} MiB`,
      );
    }
  }
  const ac = r.peers.filter((p) => p.accounts);
  if (ac.length > 0) {
    L.push('', '## 4. Accounts and history (the chat peers)', '');
    L.push(
      ...header(['peer', 'what', 'requests', 'ok/s', 'p50 / p99 / max', 'failed', 'server CPU']),
    );
    for (const p of ac) {
      const t = p.accounts;
      if (!ok(t)) {
        L.push(row([p.name, `failed: ${t?.error}`, '', '', '', '', '']));
        continue;
      }
      const line = (what: string, h: HttpStats) =>
        row([
          p.name,
          what,
          n0(h.requests),
          h.perSec.toFixed(1),
          lat(h.latency, ['p50', 'p99', 'max']),
          n0(h.failed),
          pct(h.serverCpu),
        ]);
      L.push(line(`POST /login (concurrency ${t.settings.loginConcurrency})`, t.logins));
      L.push(
        line(
          `GET /messages?limit=50 (concurrency ${t.settings.historyConcurrency}, ${t.settings.seed} messages seeded)`,
          t.history,
        ),
      );
    }
  }
  const gp = r.peers.filter((p) => p.group);
  if (gp.length > 0) {
    L.push(
      '',
      `## 5. Groups: open loop at ${n0(o.groupRate)} deliveries/s offered (latency from the scheduled send time)`,
      '',
    );
    L.push(
      `${o.groupUsers} users online, one connection each; groups of S members (disjoint, the first member sends) take turns on the same connections; send rate = ${n0(o.groupRate)} / (S - 1) messages/s over the groups. Delivered/s counts member deliveries in the ${o.groupDurationSec} s window; "last member" is the time until the last of the S - 1 members got the message. Integrity counts deliveries (lost / duplicated) and messages (unacked).`,
      '',
    );
    L.push(
      ...header([
        'peer',
        'S x groups',
        'sent msg/s',
        'delivered/s',
        'delivery p50 / p99 / max',
        'last member p50 / p99',
        'ack p50 / p99',
        'send lag p99',
        'server CPU',
        'server CPU us / delivery',
        'generator CPU',
        'other CPU',
        'lost / dup / unacked / err',
      ]),
    );
    const rounds = Math.max(0, ...gp.map((p) => p.group?.length ?? 0));
    for (const size of o.groupSizes) {
      for (let i = 0; i < rounds; i++) {
        for (const p of gp) {
          const g = p.group?.[i];
          if (g === undefined) continue;
          const name = rounds > 1 ? `${p.name} #${i + 1}` : p.name;
          const t = ok(g) ? g.bySize.find((x) => x.members === size) : undefined;
          if (!t) {
            L.push(
              row([
                name,
                `${size}: failed: ${ok(g) ? 'no result' : g.error}`,
                ...Array(11).fill(''),
              ]),
            );
            continue;
          }
          L.push(
            row([
              name,
              `${t.members} x ${t.groups}`,
              n0(t.sentPerSec),
              n0(t.deliveredPerSec),
              lat(t.delivery, ['p50', 'p99', 'max']),
              lat(t.lastMember, ['p50', 'p99']),
              lat(t.ack, ['p50', 'p99']),
              ms(t.sendLag.p99),
              pct(t.serverCpu),
              t.serverCpuUsPerDelivery.toFixed(1),
              pct(t.generatorCpu),
              pct(t.otherCpu),
              acc(t.accounting),
            ]),
          );
        }
      }
    }
  }
  const commitRows = r.peers
    .filter((p) => isChat(p.name))
    .flatMap((chat) => [
      ...(chat.throughput ?? []).map((t, i) => [`${chat.name} closed loop #${i + 1}`, t] as const),
      ...(chat.openLoop ?? []).map((t, i) => [`${chat.name} open loop #${i + 1}`, t] as const),
      ...(chat.group ?? []).flatMap((g, i) =>
        ok(g)
          ? g.bySize.map((t) => [`${chat.name} group of ${t.members} #${i + 1}`, t] as const)
          : [],
      ),
    ]);
  if (commitRows.some(([, t]) => ok(t) && t.commits)) {
    L.push('', '## Chat group commit (from its /metrics, over the measured window)', '');
    L.push(
      ...header([
        'run',
        'commits/s',
        'mean batch (messages)',
        'mean commit incl. fsync (ms)',
        'commits > 5 / 10 / 50 / 100 ms',
        'event-loop delay p99 / max (ms)',
      ]),
    );
    for (const [name, t] of commitRows) {
      if (!ok(t) || !t.commits) continue;
      const c = t.commits;
      L.push(
        row([
          name,
          n0(c.commitsPerSec),
          c.meanBatch,
          c.meanCommitMs,
          [c.over5ms ?? '?', c.over10ms ?? '?', c.over50ms, c.over100ms].join(' / '),
          c.loopMaxMs === undefined ? '?' : `${c.loopP99Ms} / ${c.loopMaxMs}`,
        ]),
      );
    }
  }
  L.push('', '## Ratios', '');
  L.push(...header(['ratio', 'value (mean of rounds)', 'per round', 'note']));
  const fx = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
  for (const x of r.ratios) {
    L.push(row([x.what, fx(x.value), x.perRound.map(fx).join(', ') || '—', x.note]));
  }
  L.push('', '## Integrity', '');
  if (r.integrity.length === 0) {
    L.push(
      'Every message sent was acked once and delivered once, in order, to the right receiver; no error frames, no failed handshakes or requests.',
    );
  } else {
    for (const i of r.integrity) L.push(`- **${i.peer}** ${i.scenario}: ${i.problems}`);
  }
  if (r.problems.length > 0) {
    L.push('', '## Problems', '');
    for (const p of r.problems) L.push(`- ${p}`);
  }
  L.push('');
  return L.join('\n');
}
