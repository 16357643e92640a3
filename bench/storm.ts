// `npm run bench:storm`: the reconnect storm (bench/scenarios/storm.ts) against one chat server
// on SQLite, pinned to core 0 with the generator on core 1 like the main bench. Starts the server
// on a seeded temporary data directory, restarts it under all the connections, writes
// bench/results/storm-<timestamp>.{json,md} and prints the Markdown. Exit code 1 when a message
// was lost or duplicated, a client never caught up, or K had to be lowered.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  fdLimit,
  freePort,
  hasTaskset,
  killAllChildren,
  pinSelf,
  raiseFdLimit,
  startChild,
  stopChild,
  waitReady,
  type Child,
} from './lib/proc.js';
import {
  ageSessions,
  seed,
  storm,
  type StormResult,
  type StormSettings,
} from './scenarios/storm.js';
import { git, ROOT, RESULTS, serverNodeArgs } from './lib/machine.js';

const USAGE = `npm run bench:storm -- [flags]

  --connections K      receivers, one user and one connection each; default 50000, lowered to
                       what the open-files limit allows (BENCH_STORM_CONNECTIONS)
  --senders S          users sending to the receivers; default 20
  --before N           messages to every receiver while all are online; default 1
  --offline-share F    share of receivers offline before the restart; default 0.2
  --while-offline N    messages to every receiver while that share is offline; default 1
  --after N            messages to every receiver right after the restart; default 1
  --concurrency C      handshakes in flight for the first connections; default 200
  --window W           messages in flight per sender; default 50
  --kill               restart with SIGKILL instead of SIGTERM
  --default-limits     run the server with its default RATE_* limits (else raised, as the bench does)
  --tickets            authenticate each handshake with a ticket (POST /websocket/ticket first, as
                       the typed client and browsers do) instead of a Bearer header
  --fresh-sessions     do not age the sessions during the restart (by default they are made last
                       used an hour ago, so that each reconnect records a use, as after a real
                       restart of clients connected for a while)
  --catch-up-limit T   seconds after the restart to wait for every client; default 150
  --server-node-args=STR  extra node flags for both server processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --no-pin, --no-build`;

function num(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0`);
  return n;
}

const RAISED_LIMITS = {
  RATE_MESSAGES_PER_SEC: '1000000',
  RATE_MESSAGES_BURST: '1000000',
  RATE_REGISTER_PER_MIN: '1000000',
  RATE_LOGIN_PER_MIN: '1000000',
  RATE_LOGIN_SOURCE_FAILURES: '1000000',
  RATE_LOGIN_ACCOUNT_FAILURES: '10000000',
  RATE_API_PER_MIN: '10000000',
  RATE_WS_HANDSHAKES_PER_MIN: '10000000',
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      help: { type: 'boolean', short: 'h' },
      connections: { type: 'string' },
      senders: { type: 'string' },
      before: { type: 'string' },
      'offline-share': { type: 'string' },
      'while-offline': { type: 'string' },
      after: { type: 'string' },
      concurrency: { type: 'string' },
      window: { type: 'string' },
      kill: { type: 'boolean' },
      'default-limits': { type: 'boolean' },
      'catch-up-limit': { type: 'string' },
      'fresh-sessions': { type: 'boolean' },
      tickets: { type: 'boolean' },
      'server-node-args': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'no-build': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const s: StormSettings = {
    connections: Math.floor(
      num(values.connections ?? process.env.BENCH_STORM_CONNECTIONS, 50_000, 'connections'),
    ),
    senders: Math.max(1, Math.floor(num(values.senders, 20, 'senders'))),
    before: Math.floor(num(values.before, 1, 'before')),
    offlineShare: Math.min(1, num(values['offline-share'], 0.2, 'offline-share')),
    whileOffline: Math.floor(num(values['while-offline'], 1, 'while-offline')),
    afterRestart: Math.floor(num(values.after, 1, 'after')),
    concurrency: Math.max(1, Math.floor(num(values.concurrency, 200, 'concurrency'))),
    window: Math.max(1, Math.floor(num(values.window, 50, 'window'))),
    kill: values.kill === true,
    defaultLimits: values['default-limits'] === true,
    catchUpLimitSec: num(values['catch-up-limit'], 150, 'catch-up-limit'),
    freshSessions: values['fresh-sessions'] === true,
    tickets: values.tickets === true,
    backoffBaseMs: 500,
    backoffMaxMs: 30_000,
  };
  const problems: string[] = [];
  const log = (line: string) => console.log(line);

  // Open files: K receivers and S senders here, as many in the server (it inherits the limit).
  const wanted = s.connections + s.senders + 1000;
  let limits = fdLimit();
  let fdNote = `${limits.soft} (hard ${limits.hard})`;
  if (limits.soft < wanted) {
    if (raiseFdLimit(wanted)) fdNote = `raised to ${wanted} with prlimit`;
    else {
      limits = fdLimit();
      const k = Math.max(0, limits.soft - s.senders - 1000);
      fdNote = `${limits.soft} (hard ${limits.hard}), prlimit not permitted: K lowered from ${s.connections} to ${k}`;
      problems.push(`open files limit ${limits.soft}: K lowered from ${s.connections} to ${k}`);
      s.connections = k;
    }
  }
  if (s.connections < 1) throw new Error('no connections left under the open-files limit');

  let pinned = values['no-pin'] !== true && os.cpus().length >= 2 && hasTaskset();
  if (pinned) {
    try {
      pinSelf(1);
    } catch {
      pinned = false;
    }
  }
  if (values['no-build'] !== true) {
    log('storm: npm run build');
    execFileSync('npm', ['run', 'build', '--silent'], {
      cwd: ROOT,
      stdio: 'inherit',
      timeout: 180_000,
    });
  }

  const started = new Date();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-storm-'));
  const secret = randomBytes(32).toString('base64url');
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  let child: Child | undefined;
  const start = async (): Promise<Child> => {
    const nodeArgs = serverNodeArgs(values['server-node-args'] ?? '');
    const c = startChild('chat', [process.execPath, ...nodeArgs, 'dist/src/main.js'], {
      cwd: ROOT,
      core: pinned ? 0 : undefined,
      env: {
        ...Object.fromEntries(
          Object.entries(process.env).filter(
            ([k]) => !k.startsWith('RATE_') && k !== 'DATABASE_URL' && k !== 'REDIS_URL',
          ),
        ),
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'production',
        JWT_SECRET: secret,
        ...(s.defaultLimits ? {} : RAISED_LIMITS),
      },
    });
    child = c;
    await waitReady(c, `${baseUrl}/readyz`, 60_000);
    return c;
  };

  // A hard limit: kill the server, remove the data, say so.
  const watchdog = setTimeout(() => {
    console.error('storm: watchdog: over 6 minutes, stopped');
    killAllChildren();
    fs.rmSync(dataDir, { recursive: true, force: true });
    process.exit(1);
  }, 360_000);
  watchdog.unref();

  let result: StormResult | undefined;
  let error: string | undefined;
  try {
    const users = await seed(dataDir, secret, s.connections, s.senders);
    log(
      `storm: seeded ${s.senders} senders and ${s.connections} receivers in ${users.seedSec} s; data in ${dataDir}`,
    );
    await start();
    result = await storm(
      {
        child: () => child as Child,
        baseUrl,
        wsUrl: `ws://127.0.0.1:${port}/websocket`,
        async restart(signal) {
          const old = child as Child;
          const t0 = performance.now();
          old.proc.kill(signal);
          const timer = setTimeout(() => old.proc.kill('SIGKILL'), 30_000);
          await old.exited;
          clearTimeout(timer);
          const exitedMs = Math.round(performance.now() - t0);
          const agingMs = s.freshSessions ? 0 : ageSessions(dataDir);
          await start();
          return { exitedMs, agingMs };
        },
      },
      users,
      s,
      Math.floor(Date.now() / 60_000),
      log,
    );
  } catch (e) {
    error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    problems.push(`failed: ${error.split('\n')[0]}`);
  } finally {
    const said = child?.output.slice(-8) ?? [];
    if (said.length > 0) problems.push(`server wrote: ${said.join(' | ').slice(0, 1500)}`);
    if (child) await stopChild(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
    clearTimeout(watchdog);
  }

  if (result) {
    if (result.lost > 0) problems.push(`${result.lost} messages lost`);
    if (result.duplicated > 0) problems.push(`${result.duplicated} messages duplicated`);
    if (result.unexpected > 0)
      problems.push(`${result.unexpected} messages not addressed to the receiver`);
    if (result.notCaughtUp > 0) problems.push(`${result.notCaughtUp} clients never caught up`);
  }
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'nocommit';
  const report = {
    startedAt: started.toISOString(),
    commit,
    command: `npm run bench:storm${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    pinned,
    fdLimit: fdNote,
    result,
    problems,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  const base = path.join(
    RESULTS,
    `storm-${report.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z')}`,
  );
  const md = markdown(report);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(`${base}.md`, md);
  console.log(`\n${md}\nwritten: ${path.relative(ROOT, base)}.json and .md`);
  return problems.length > 0 ? 1 : 0;
}

function fmt(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US');
}

function counts(map: Record<string, number>): string {
  const entries = Object.entries(map);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
}

function markdown(r: {
  startedAt: string;
  commit: string;
  command: string;
  node: string;
  cpu: string;
  cores: number;
  pinned: boolean;
  fdLimit: string;
  result: StormResult | undefined;
  problems: string[];
}): string {
  const lines = [
    `# Reconnect storm ${r.startedAt} (${r.commit})`,
    '',
    `- Command: \`${r.command}\``,
    `- Node ${r.node}, ${r.cpu}, ${r.cores} cores; ${r.pinned ? 'server on core 0, generator on core 1' : 'not pinned'}`,
    `- Open files: ${r.fdLimit}`,
    `- Server settings from the environment: ${
      ['LISTEN_BACKLOG', 'SQLITE_THREAD', 'SYNC_PAGE_SIZE']
        .filter((k) => process.env[k] !== undefined)
        .map((k) => `${k}=${process.env[k]}`)
        .join(', ') || 'none (defaults)'
    }`,
  ];
  const x = r.result;
  if (x) {
    const s = x.settings;
    const mib = (kib: number) => fmt(Math.round(kib / 1024));
    lines.push(
      `- K=${fmt(s.connections)} receivers (one user, one session, one connection each, ${s.tickets ? 'a ticket (POST /websocket/ticket) before every handshake' : 'Bearer header'}; sessions ${s.freshSessions ? 'left as used at the first connection' : 'aged an hour during the restart, so every reconnect records a use'}), S=${s.senders} senders; ${s.before} message(s) to every receiver with all online, ${s.whileOffline} with ${fmt(x.offline)} (${s.offlineShare * 100}%) offline, ${s.afterRestart} right after the restart; ${s.kill ? 'SIGKILL' : 'SIGTERM'}; RATE_* ${s.defaultLimits ? 'server defaults' : 'raised'}; client backoff: full jitter, ${s.backoffBaseMs} ms doubling to ${s.backoffMaxMs / 1000} s`,
      `- Seeding (users and sessions straight into SQLite): ${x.seedSec} s`,
      '',
      '| measure | value |',
      '| --- | --- |',
      `| first connections: handshakes/s (C=${s.concurrency}) | ${fmt(x.initial.handshakesPerSec)} (${fmt(x.initial.openSec)} s, ${fmt(x.initial.failed)} failed) |`,
      `| server RSS before → after the first connections (MiB) | ${mib(x.initial.rssBeforeKiB)} → ${mib(x.initial.rssAfterKiB)} (${fmt(Math.round(((x.initial.rssAfterKiB - x.initial.rssBeforeKiB) / s.connections) * 10) / 10)} KiB per connection) |`,
      `| server heap used before → after (MiB) | ${fmt(x.initial.heapBeforeMiB)} → ${fmt(x.initial.heapAfterMiB)} (${fmt(Math.round(((x.initial.heapAfterMiB - x.initial.heapBeforeMiB) * 1024 * 10) / s.connections) / 10)} KiB per connection) |`,
      `| messages acked: before / while offline / after the restart | ${fmt(x.sent.before)} / ${fmt(x.sent.whileOffline)} / ${fmt(x.sent.afterRestart)} |`,
      `| ${x.restart.signal} → old process gone | ${fmt(x.restart.exitedMs)} ms |`,
      `| ${x.restart.signal} → /readyz 200 on the new process | ${fmt(x.restart.readyMs)} ms (the bench aged the sessions for ${fmt(x.restart.agingMs)} ms of it) |`,
      `| reconnected (ms after the signal): p50 / p99 / last | ${fmt(x.reconnected.p50)} / ${fmt(x.reconnected.p99)} / ${fmt(x.reconnected.max)} (${fmt(x.reconnected.count)} clients) |`,
      `| **caught up** (synced, every message from before the restart): p50 / p99 / last | **${fmt(x.caughtUp.p50)} / ${fmt(x.caughtUp.p99)} / ${fmt(x.caughtUp.max)} ms** (${fmt(x.caughtUp.count)} clients, ${fmt(x.notCaughtUp)} never) |`,
      `| every message, the ones sent after the restart included, at every receiver | ${x.allDeliveredMs === null ? 'not within the limit' : `${fmt(x.allDeliveredMs)} ms`} |`,
      `| handshakes in the storm: mean from ready to the last / peak second | ${fmt(x.storm.handshakesPerSec)}/s / ${fmt(x.storm.peakHandshakesPerSec)}/s (${fmt(x.storm.handshakes)} handshakes, ${fmt(x.storm.attempts)} retries) |`,
      `| server CPU during the storm: mean / peak second | ${fmt(x.storm.serverCpuPct)}% / ${fmt(x.storm.peakServerCpuPct)}% |`,
      `| server RSS: peak in the storm / after (MiB) | ${mib(x.storm.peakRssKiB)} / ${mib(x.storm.rssAfterKiB)} |`,
      `| event loop: largest lag in /metrics (polled 1/s) / slowest poll | ${fmt(x.storm.maxEventLoopLagMs)} ms / ${fmt(x.storm.slowestPollMs)} ms |`,
      `| listen queue overflows / drops (TcpExt, machine-wide) | ${fmt(x.storm.listenOverflows)} / ${fmt(x.storm.listenDrops)} |`,
      `| handshakes refused, by status | ${counts(x.counters.refused)} |`,
      `| attempts failed without an answer | ${counts(x.counters.failed)} |`,
      `| server closes, by code | ${counts(x.counters.closes)} |`,
      `| error frames | ${counts(x.counters.errorFrames)} |`,
      `| **lost / duplicated / not addressed to the receiver** | **${fmt(x.lost)} / ${fmt(x.duplicated)} / ${fmt(x.unexpected)}** |`,
      `| generator RSS (MiB) | ${fmt(x.generatorRssMiB)} |`,
      '',
      `Clients caught up in each second after the signal: ${x.storm.caughtUpPerSecond.join(' ')}`,
    );
  }
  lines.push('', '## Problems', '');
  lines.push(...(r.problems.length > 0 ? r.problems.map((p) => `- ${p}`) : ['none']));
  return `${lines.join('\n')}\n`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    killAllChildren();
    process.exit(1);
  },
);
