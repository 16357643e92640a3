// The soak (`npm run bench:soak`, opt-in, never in CI): the chat server (SQLite, built, pinned to
// core 0) under a steady open-loop load for a long time, with reconnect churn, and whether it
// holds: per minute the server's memory, delivery latency, event-loop delay and commit time, and
// at the end the memory trend, every message's fate and the steadiness of the p99.
//
// Load: C connections ("devices") of U users (device d belongs to user d mod U), from source
// addresses 127.0.200.1, 127.0.200.2, ... (at most PER_ADDRESS each). Messages leave on a fixed
// schedule (R/s in total, round-robin over the devices); each user writes to its `contacts`
// next users in turn. A message reaches every connection of its receiver and every other
// connection of its sender. Each minute churn% of the devices are dropped (the socket is
// terminated, as by a network failure) and resume after a random 0.5-3 s with
// `/websocket?after=<greatest id received>` (docs/protocol.md, Sync: a safe cursor on one SQLite
// node); once `synced`, they resend what was unacked at the drop or scheduled while away, with
// the same clientId (the server acks a known clientId again without storing it twice).
//
// Integrity: every device must see every message of its user's stream exactly once: as an ack if
// it sent it, as a `message` frame otherwise (an own message may also come back as a frame after
// a resume: the protocol says so, and it is counted apart, not as a duplicate).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { writeCharts } from './lib/charts.js';
import type { Identity } from './lib/drivers.js';
import { removeDataDirs, startPeer, type Peer } from './lib/peers.js';
import {
  CpuMeter,
  OtherCpuMeter,
  fdLimit,
  hasTaskset,
  isRunning,
  killAllChildren,
  pinSelf,
  raiseFdLimit,
  rssKiB,
  round,
  sleep,
} from './lib/proc.js';
import {
  soakMarkdown,
  verdict,
  type SoakIntegrity,
  type SoakMinute,
  type SoakOptions,
  type SoakReport,
} from './lib/soak-report.js';
import { histogram, recordMs, summarize, type Histogram } from './lib/stats.js';
import { StreamTracker } from './lib/tracker.js';
import { commitStats } from './scenarios/throughput.js';
import type { CommitCounters } from './lib/peers.js';
import { git, cpuModel, ROOT, RESULTS, SERVER_CORE, GENERATOR_CORE } from './lib/machine.js';

const PER_ADDRESS = 1000;
const CONNECT_CONCURRENCY = 200;

const DEFAULTS: SoakOptions = {
  minutes: 30,
  rate: 2000,
  connections: 5000,
  users: 1000,
  churn: 0.03,
  downMinSec: 0.5,
  downMaxSec: 3,
  size: 100,
  contacts: 4,
  warmupMinutes: 5,
  drainSec: 60,
  maxRssSlopeMiBPerHour: 20,
  maxP99Ratio: 3,
  pin: true,
  build: true,
};

const USAGE = `npm run bench:soak -- [options]

  --minutes N          minutes of load (default 30)
  --rate R             messages/s in total, open loop (default 2000)
  --connections C      WebSocket connections (default 5000)
  --users U            users the connections belong to, C/U each (default 1000)
  --churn P            percent of the connections dropped and resumed each minute (default 3)
  --contacts K         receivers each user writes to in turn (default 4)
  --size S             characters of content per message (default 100)
  --warmup-minutes W   minutes left out of the memory trend (default 5, at most a third of the run)
  --drain SEC          time for every device to catch up after the last send (default 60)
  --max-rss-slope M    verdict: RSS trend allowed after the warm-up, MiB/hour (default 20)
  --max-p99-ratio X    verdict: max minute p99 / median minute p99 allowed (default 3)
  --server-node-args="..."  extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --no-pin, --no-build`;

function parse(argv: string[]): SoakOptions | 'help' {
  const o = { ...DEFAULTS };
  let warmupGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--no-pin') {
      o.pin = false;
      continue;
    }
    if (arg === '--no-build') {
      o.build = false;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const raw = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (flag === '--server-node-args') {
      o.serverNodeArgs = (raw ?? '').split(' ').filter(Boolean);
      continue;
    }
    const n = Number(raw);
    if (raw === undefined || !Number.isFinite(n) || n < 0) {
      throw new Error(`${flag} needs a non-negative number`);
    }
    const int = () => {
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
      return n;
    };
    switch (flag) {
      case '--minutes':
        o.minutes = int();
        break;
      case '--rate':
        o.rate = int();
        break;
      case '--connections':
        o.connections = int();
        break;
      case '--users':
        o.users = int();
        break;
      case '--churn':
        if (n > 100) throw new Error('--churn is a percentage, 0 to 100');
        o.churn = n / 100;
        break;
      case '--contacts':
        o.contacts = int();
        break;
      case '--size':
        o.size = int();
        break;
      case '--warmup-minutes':
        o.warmupMinutes = Math.floor(n);
        warmupGiven = true;
        break;
      case '--drain':
        o.drainSec = n;
        break;
      case '--max-rss-slope':
        o.maxRssSlopeMiBPerHour = n;
        break;
      case '--max-p99-ratio':
        o.maxP99Ratio = n;
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  if (o.users < 2) throw new Error('--users must be at least 2');
  if (o.users > o.connections) throw new Error('--users must not exceed --connections');
  if (o.contacts > o.users - 1) o.contacts = o.users - 1;
  if (o.size < 24) throw new Error('--size must be at least 24 (the content carries the clientId)');
  if (!warmupGiven) o.warmupMinutes = Math.min(DEFAULTS.warmupMinutes, Math.floor(o.minutes / 3));
  return o;
}

const message = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).slice(0, 300);

type State = 'down' | 'connecting' | 'replaying' | 'live';

interface Device {
  index: number;
  user: number;
  address: string;
  ws: WebSocket | undefined;
  state: State;
  /** Greatest stream id received: where a resume starts. */
  cursor: number;
  /** Messages sent or scheduled and not acked yet (resent after a resume). */
  pending: Set<number>;
  /** Set while a resume is being retried. */
  attempts: number;
}

interface Scrape {
  at: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  connections: number;
  lag: { p50Ms: number; p99Ms: number; maxMs: number };
  commits: CommitCounters;
}

async function scrape(peer: Peer): Promise<Scrape> {
  const res = await peer.http!.request<string>('GET', '/metrics');
  const text = typeof res.body === 'string' ? res.body : '';
  const read = (metric: string) =>
    Number(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const bucket = (le: string) =>
    Number(
      new RegExp(`^chat_commit_duration_seconds_bucket\\{le="${le}"\\} (\\S+)$`, 'm').exec(
        text,
      )?.[1] ?? NaN,
    );
  const rss = isRunning(peer.child) ? rssKiB(peer.child.pid) / 1024 : NaN;
  return {
    at: performance.now(),
    rssMiB: round(rss, 1),
    heapUsedMiB: round(read('nodejs_heap_size_used_bytes') / 2 ** 20, 1),
    heapTotalMiB: round(read('nodejs_heap_size_total_bytes') / 2 ** 20, 1),
    connections: read('chat_websocket_connections'),
    lag: {
      p50Ms: round(read('nodejs_eventloop_lag_p50_seconds') * 1000, 2),
      p99Ms: round(read('nodejs_eventloop_lag_p99_seconds') * 1000, 2),
      maxMs: round(read('nodejs_eventloop_lag_max_seconds') * 1000, 2),
    },
    commits: {
      batches: read('chat_commit_batch_size_count'),
      messages: read('chat_commit_batch_size_sum'),
      seconds: read('chat_commit_duration_seconds_sum'),
      within5ms: bucket('0.005'),
      within10ms: bucket('0.01'),
      within50ms: bucket('0.05'),
      within100ms: bucket('0.1'),
      loopMaxMs: read('nodejs_eventloop_lag_max_seconds') * 1000,
      loopP99Ms: read('nodejs_eventloop_lag_p99_seconds') * 1000,
    },
  };
}

interface MinuteCounters {
  scheduled: number;
  acks: number;
  frames: number;
  drops: number;
  replayed: number;
  resent: number;
  duplicated: number;
  latency: Histogram;
  sendLag: Histogram;
}

const newMinute = (): MinuteCounters => ({
  scheduled: 0,
  acks: 0,
  frames: 0,
  drops: 0,
  replayed: 0,
  resent: 0,
  duplicated: 0,
  latency: histogram(),
  sendLag: histogram(),
});

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let parsed: SoakOptions | 'help';
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`${message(error)}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    console.log(USAGE);
    return 0;
  }
  const o = parsed;
  const started = new Date();
  const t0 = performance.now();
  const problems: string[] = [];

  let pinned = o.pin && os.cpus().length >= 2 && hasTaskset();
  let pinNote = !o.pin ? 'disabled by --no-pin' : pinned ? '' : 'one core or no taskset';
  if (pinned) {
    try {
      pinSelf(GENERATOR_CORE);
    } catch (error) {
      pinned = false;
      pinNote = `taskset failed: ${message(error)}`;
    }
  }

  // C sockets here and C in the server (which inherits the limit).
  const needed = o.connections + 2000;
  let fdNote = '';
  if (fdLimit().soft < needed) {
    if (raiseFdLimit(needed)) fdNote = `raised to ${needed} with prlimit`;
    else {
      const limit = fdLimit().soft;
      console.error(
        `soak: the open files limit ${limit} is below ${needed} and could not be raised; use --connections ${Math.max(0, limit - 2000)} or run where prlimit is allowed`,
      );
      return 2;
    }
  }

  // The users' access tokens must outlive the run: resumes use them again.
  process.env.ACCESS_TOKEN_TTL_SEC = String(Math.min(86_400, Math.max(900, (o.minutes + 30) * 60)));

  const tracker = new StreamTracker(
    o.connections,
    o.users,
    Math.ceil(o.rate * o.minutes * 60),
    o.size,
  );
  const minutes: MinuteCounters[] = Array.from({ length: o.minutes + 1 }, newMinute);
  const samples: SoakMinute[] = [];
  const overall = histogram();
  const integrity: SoakIntegrity = {
    messages: 0,
    expectedDeliveries: 0,
    seenDeliveries: 0,
    lost: 0,
    duplicateFrames: 0,
    duplicateAcks: 0,
    unacked: 0,
    misrouted: 0,
    ownEchoes: 0,
    errors: {},
    failedResumes: 0,
    unexpectedCloses: 0,
  };
  let setupSec = 0;
  let drainSec = 0;
  let sendStart = Infinity;
  let addresses = 0;
  let finished = false;

  const finish = (): number => {
    if (finished) return 1;
    finished = true;
    // Lost: deliveries each message should have had (every device of its two users) and did not.
    const minuteOf = (ref: number) =>
      Math.min(minutes.length - 1, Math.floor((ref - sendStart) / 60_000));
    const a = tracker.accounting(minuteOf);
    integrity.messages = a.messages;
    integrity.expectedDeliveries = a.expectedDeliveries;
    integrity.seenDeliveries = a.seenDeliveries;
    integrity.lost = a.lost;
    integrity.unacked = a.unacked;
    integrity.duplicateAcks = tracker.duplicateAcks;
    integrity.duplicateFrames = tracker.duplicateFrames;
    integrity.misrouted = tracker.misrouted;
    integrity.ownEchoes = tracker.ownEchoes;
    for (const s of samples) {
      s.lost = a.lostByBucket.get(s.minute - 1) ?? 0;
      s.delivery = summarize(minutes[s.minute - 1]!.latency);
    }
    const report: SoakReport = {
      kind: 'soak',
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      durationSec: Math.round(performance.now() - t0) / 1000,
      command: ['npm run bench:soak', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
      commit: git(['rev-parse', '--short', 'HEAD']) || 'nocommit',
      dirty: git(['status', '--porcelain', '--', '.', ':(exclude)bench']) !== '',
      node: process.version,
      cpuModel: cpuModel(),
      cores: os.cpus().length,
      kernel: os.release(),
      pinning: { enabled: pinned, note: pinNote },
      fdLimit: { ...fdLimit(), note: fdNote },
      options: o,
      setupSec,
      sourceAddresses: addresses,
      minutes: samples,
      delivery: summarize(overall),
      integrity,
      verdict: verdict(samples, integrity, o),
      drainSec,
      problems,
    };
    fs.mkdirSync(RESULTS, { recursive: true });
    const stamp = report.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
    const base = path.join(RESULTS, `soak-${stamp}-${report.commit}`);
    const md = soakMarkdown(report);
    fs.writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(`${base}.md`, md);
    console.log(`\n${md}`);
    try {
      const charts = writeCharts(report, base, { latest: true });
      console.log(
        `written: ${[`${base}.json`, `${base}.md`, ...charts].map((f) => path.relative(ROOT, f)).join(', ')}`,
      );
    } catch (error) {
      console.error(`soak: the chart could not be drawn: ${message(error)}`);
    }
    const v = report.verdict;
    return problems.length > 0 || !v.integrityOk || v.memoryOk === false || v.p99Ok === false
      ? 1
      : 0;
  };

  // A hard limit: the build, users (about 20 a second) and connections, the minutes, the drain,
  // a margin.
  const budgetSec = Math.ceil(
    (o.build ? 180 : 0) + o.users / 10 + o.connections / 100 + o.minutes * 60 + o.drainSec + 120,
  );
  const watchdog = setTimeout(() => {
    problems.push(`watchdog: the soak exceeded ${budgetSec} s and was stopped`);
    killAllChildren();
    process.exit(finish() || 1);
  }, budgetSec * 1000);
  watchdog.unref();

  if (o.build) {
    console.log('soak: npm run build');
    execFileSync('npm', ['run', 'build', '--silent'], {
      cwd: ROOT,
      stdio: 'inherit',
      timeout: 180_000,
    });
  }
  const server: Peer = await startPeer('chat', {
    root: ROOT,
    core: pinned ? SERVER_CORE : undefined,
    nodeArgs: o.serverNodeArgs,
  });
  console.log(`soak: chat pid ${server.child.pid} at ${server.baseUrl}; creating ${o.users} users`);
  const names = Array.from({ length: o.users }, (_, i) => `soak${i}`);
  const ids: Identity[] = await server.identities(names);
  const wsUrl = server.baseUrl.replace(/^http/, 'ws') + '/websocket';

  addresses = Math.ceil(o.connections / PER_ADDRESS);
  const devices: Device[] = Array.from({ length: o.connections }, (_, d) => ({
    index: d,
    user: d % o.users,
    address: `127.0.${200 + Math.floor(Math.floor(d / PER_ADDRESS) / 250)}.${1 + (Math.floor(d / PER_ADDRESS) % 250)}`,
    ws: undefined,
    state: 'down',
    cursor: 0,
    pending: new Set(),
    attempts: 0,
  }));
  const minuteNow = () =>
    Math.max(0, Math.min(minutes.length - 1, Math.floor((performance.now() - sendStart) / 60_000)));

  const sendMessage = (dev: Device, k: number) => {
    const receiver = ids[tracker.receiverOf(k)]!.username;
    dev.ws!.send(
      JSON.stringify({ receiver, content: tracker.content(k), clientId: tracker.clientId(k) }),
    );
  };

  const onFrame = (dev: Device, text: string) => {
    // Signals (receipts, presence, typing) are not tracked: skip their parsing.
    if (
      text.startsWith('{"type":"receipt"') ||
      text.startsWith('{"type":"presence"') ||
      text.startsWith('{"type":"typing"')
    ) {
      return;
    }
    let f: {
      type?: string;
      id?: unknown;
      clientId?: unknown;
      content?: unknown;
      code?: unknown;
      lastId?: unknown;
    };
    try {
      f = JSON.parse(text) as typeof f;
    } catch {
      integrity.errors.invalid_json_from_server =
        (integrity.errors.invalid_json_from_server ?? 0) + 1;
      return;
    }
    const now = performance.now();
    const minute = minuteNow();
    switch (f.type) {
      case 'ack': {
        const { outcome, k } = tracker.onAck(dev.index, f.clientId);
        minutes[minute]!.acks += 1;
        if (outcome === 'new') dev.pending.delete(k);
        if (outcome === 'duplicate') minutes[minute]!.duplicated += 1;
        return;
      }
      case 'message': {
        const id = Number(f.id);
        if (id > dev.cursor) dev.cursor = id;
        minutes[minute]!.frames += 1;
        if (dev.state === 'replaying') minutes[minute]!.replayed += 1;
        const { outcome, k } = tracker.onMessage(dev.index, f.content);
        if (outcome === 'duplicate') minutes[minute]!.duplicated += 1;
        // Timed: live frames at the receiver's devices of messages sent on schedule.
        if (
          outcome === 'new' &&
          dev.state === 'live' &&
          tracker.receiverOf(k) === dev.user &&
          !tracker.isLate(k)
        ) {
          const ref = tracker.ref(k);
          const m = Math.min(minutes.length - 1, Math.floor((ref - sendStart) / 60_000));
          recordMs(minutes[m]!.latency, now - ref);
          recordMs(overall, now - ref);
        }
        return;
      }
      case 'synced': {
        const last = f.lastId === null || f.lastId === undefined ? 0 : Number(f.lastId);
        if (last > dev.cursor) dev.cursor = last;
        dev.state = 'live';
        dev.attempts = 0;
        // Resend what is unacked (sent before the drop, or scheduled while away), in order.
        const again = [...dev.pending].sort((a, b) => a - b);
        for (const k of again) {
          tracker.markLate(k);
          sendMessage(dev, k);
        }
        minutes[minute]!.resent += again.length;
        return;
      }
      case 'error': {
        const code = String(f.code);
        integrity.errors[code] = (integrity.errors[code] ?? 0) + 1;
        return;
      }
      case 'edit':
      case 'delete':
      case 'conversation': {
        const id = Number(f.id);
        if (id > dev.cursor) dev.cursor = id;
        return;
      }
    }
  };

  /** Opens the device's connection with `?after=<cursor>`; resolves at `synced`. */
  const connect = (dev: Device): Promise<void> =>
    new Promise((resolve) => {
      dev.state = 'connecting';
      const ws = new WebSocket(`${wsUrl}?after=${dev.cursor}`, {
        headers: { authorization: `Bearer ${ids[dev.user]!.token}` },
        perMessageDeflate: false,
        handshakeTimeout: 15_000,
        localAddress: dev.address,
      });
      dev.ws = ws;
      let settled = false;
      const done = () => {
        if (!settled) {
          settled = true;
          resolve();
        }
      };
      const retry = (why: string) => {
        if (dev.ws !== ws) return;
        ws.terminate();
        dev.ws = undefined;
        dev.state = 'down';
        integrity.failedResumes += 1;
        dev.attempts += 1;
        if (dev.attempts > 20) {
          problems.push(`device ${dev.index} gave up after 20 failed connections: ${why}`);
          done();
          return;
        }
        if (!stopping) setTimeout(() => void connect(dev).then(done), 1000);
        else done();
      };
      ws.on('message', (data) => {
        if (dev.ws === ws) onFrame(dev, data.toString());
        if (dev.state === 'live') done();
      });
      ws.once('open', () => {
        if (dev.ws === ws) dev.state = 'replaying';
      });
      ws.once('unexpected-response', (_req, res) => retry(`HTTP ${res.statusCode}`));
      ws.once('error', (error) => {
        if (dev.state === 'connecting') retry(error.message);
      });
      ws.on('close', () => {
        if (dev.ws !== ws) return;
        if (dev.state === 'connecting') return retry('closed during the handshake');
        // Not dropped by us: count it, and resume like a dropped device.
        integrity.unexpectedCloses += 1;
        dev.ws = undefined;
        dev.state = 'down';
        if (!stopping) setTimeout(() => void connect(dev), 1000);
        done();
      });
    });

  let stopping = false;
  const setupStart = performance.now();
  console.log(`soak: opening ${o.connections} connections from ${addresses} source addresses`);
  {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONNECT_CONCURRENCY }, async () => {
        while (next < devices.length) await connect(devices[next++]!);
      }),
    );
  }
  const notLive = devices.filter((d) => d.state !== 'live').length;
  if (notLive > 0) problems.push(`${notLive} connections were not open when sending started`);
  setupSec = round((performance.now() - t0) / 1000, 1);
  console.log(
    `soak: ${o.connections - notLive} connections live in ${round((performance.now() - setupStart) / 1000, 1)} s (setup ${setupSec} s); ${o.minutes} min at ${o.rate} msg/s`,
  );

  // Per-minute readings; the first scrape also resets the server's event-loop histogram.
  let previous = await scrape(server);
  let serverCpu = new CpuMeter(server.serverPids);
  let generatorCpu = new CpuMeter('self');
  let otherCpu = new OtherCpuMeter([server.serverPids, 'self']);
  sendStart = performance.now() + 50;
  const total = Math.ceil(o.rate * o.minutes * 60);
  const interval = 1000 / o.rate;
  let k = 0;

  // Churn: drops spread evenly over each minute.
  const dropsPerMinute = Math.round(o.churn * o.connections);
  let churnTimer: NodeJS.Timeout | undefined;
  const drop = () => {
    for (let tries = 0; tries < 20; tries++) {
      const dev = devices[Math.floor(Math.random() * devices.length)]!;
      if (dev.state !== 'live' || !dev.ws) continue;
      const ws = dev.ws;
      dev.ws = undefined;
      dev.state = 'down';
      ws.terminate();
      minutes[minuteNow()]!.drops += 1;
      const away = o.downMinSec + Math.random() * (o.downMaxSec - o.downMinSec);
      setTimeout(() => void connect(dev), away * 1000);
      return;
    }
  };
  if (dropsPerMinute > 0) {
    const every = 60_000 / dropsPerMinute;
    const first = sendStart + every / 2;
    let n = 0;
    const tick = () => {
      if (stopping) return;
      while (first + n * every <= performance.now()) {
        drop();
        n += 1;
      }
      churnTimer = setTimeout(tick, Math.max(1, first + n * every - performance.now()));
    };
    churnTimer = setTimeout(tick, Math.max(0, first - performance.now()));
  }

  const sampleMinute = async (minute: number) => {
    const now = await scrape(server);
    const c = minutes[minute - 1]!;
    const sample: SoakMinute = {
      minute,
      rssMiB: now.rssMiB,
      heapUsedMiB: now.heapUsedMiB,
      heapTotalMiB: now.heapTotalMiB,
      serverConnections: now.connections,
      scheduled: c.scheduled,
      acks: c.acks,
      frames: c.frames,
      delivery: summarize(c.latency),
      sendLagP99Ms: summarize(c.sendLag).p99,
      eventLoop: now.lag,
      commits: commitStats(previous.commits, now.commits, (now.at - previous.at) / 1000),
      drops: c.drops,
      replayed: c.replayed,
      resent: c.resent,
      lost: 0,
      duplicated: c.duplicated,
      serverCpuPct: serverCpu.stop().pct,
      generatorCpuPct: generatorCpu.stop().pct,
      otherCpuPct: otherCpu.stop().pct,
    };
    serverCpu = new CpuMeter(server.serverPids);
    generatorCpu = new CpuMeter('self');
    otherCpu = new OtherCpuMeter([server.serverPids, 'self']);
    previous = now;
    samples.push(sample);
    const d = sample.delivery;
    console.log(
      `soak: minute ${minute}: RSS ${sample.rssMiB} MiB, heap ${sample.heapUsedMiB} MiB, delivery p50/p99 ${d.p50}/${d.p99} ms (so far), send lag p99 ${sample.sendLagP99Ms} ms, event loop p99 ${sample.eventLoop.p99Ms} ms, commit ${sample.commits?.meanCommitMs} ms x ${sample.commits?.commitsPerSec}/s, ${sample.drops} drops, ${sample.resent} resent, ${sample.duplicated} duplicated, CPU server ${sample.serverCpuPct}% generator ${sample.generatorCpuPct}% other ${sample.otherCpuPct}%`,
    );
  };

  await new Promise<void>((resolve) => {
    let sampled = 0;
    const tick = () => {
      const now = performance.now();
      while (k < total && sendStart + k * interval <= now) {
        const d = k % o.connections;
        const dev = devices[d]!;
        const sender = dev.user;
        const receiver = (sender + 1 + (Math.floor(k / o.connections) % o.contacts)) % o.users;
        const m = tracker.schedule(d, receiver, sendStart + k * interval);
        minutes[Math.min(minutes.length - 1, Math.floor((k * interval) / 60_000))]!.scheduled += 1;
        dev.pending.add(m);
        if (dev.state === 'live') {
          sendMessage(dev, m);
          recordMs(minutes[minuteNow()]!.sendLag, performance.now() - tracker.ref(m));
        } else tracker.markLate(m); // held until the device is back
        k += 1;
      }
      const minute = Math.floor((now - sendStart) / 60_000);
      if (minute > sampled && sampled < o.minutes) {
        sampled += 1;
        void sampleMinute(sampled).catch((error: unknown) =>
          problems.push(`minute ${sampled}: /metrics failed: ${message(error)}`),
        );
      }
      if (!isRunning(server.child)) {
        problems.push(`the server exited (${server.child.exitCode}) at minute ${minute + 1}`);
        resolve();
        return;
      }
      if (k < total || sampled < o.minutes) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, Math.max(0, sendStart - performance.now()));
  });

  // Drain: no more drops; wait until every device is back, has its acks and every delivery.
  stopping = true;
  clearTimeout(churnTimer);
  const drainStart = performance.now();
  for (;;) {
    const waiting = devices.filter((d) => d.state !== 'live' || d.pending.size > 0).length;
    if (waiting === 0 && tracker.outstanding() <= 0) break;
    if (performance.now() - drainStart > o.drainSec * 1000 || !isRunning(server.child)) {
      problems.push(`drain: not every device caught up within ${o.drainSec} s`);
      break;
    }
    // Devices whose resume gave up are reconnected once more in the drain.
    await sleep(250);
  }
  drainSec = round((performance.now() - drainStart) / 1000, 1);
  if (integrity.unexpectedCloses > 0) {
    problems.push(`${integrity.unexpectedCloses} connections closed without being dropped`);
  }
  const said = server.child.output;
  if (said.length > 0) problems.push(`the server wrote: ${said.slice(-5).join(' | ')}`);
  for (const dev of devices) {
    const ws = dev.ws;
    dev.ws = undefined;
    ws?.terminate();
  }
  await server.stop();
  clearTimeout(watchdog);
  return finish();
}

process.on('exit', () => {
  killAllChildren();
  removeDataDirs();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => process.exit(130));
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
