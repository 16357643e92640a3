// The benchmark suite (`npm run bench`): starts each peer as a child process pinned to core 0,
// pins itself (the load generator) to core 1, runs the scenarios scenario by scenario (each peer
// in turn, so compared figures are taken close together), stops what it started, and writes
// bench/results/<timestamp>-<commit>.{json,md}, its charts (-open-loop.svg, -throughput.svg)
// and latest.md. Exit code 1 if any message was
// lost, duplicated or left unacked, or a peer failed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Identity } from './lib/drivers.js';
import {
  isChat,
  parseOptions,
  usage,
  type Options,
  type PeerName,
  type ScenarioName,
} from './lib/options.js';
import { diskFloor } from './lib/disk.js';
import { writeCharts } from './lib/charts.js';
import { DESCRIPTIONS, removeDataDirs, startPeer, type Peer } from './lib/peers.js';
import { startServices, stopServices, type Services } from './lib/services.js';
import {
  cpusAllowed,
  fdLimit,
  hasTaskset,
  isRunning,
  killAllChildren,
  pinSelf,
  raiseFdLimit,
  settle,
  sleep,
} from './lib/proc.js';
import {
  integrity,
  markdown,
  ratios,
  type Failure,
  type PeerReport,
  type RunReport,
} from './lib/report.js';
import { accounts, type AccountsResult } from './scenarios/accounts.js';
import { groupScenario, type GroupRound } from './scenarios/group.js';
import { idle, type IdleResult } from './scenarios/idle.js';
import { openLoop, type OpenLoopResult } from './scenarios/open-loop.js';
import { throughput, type ThroughputResult } from './scenarios/throughput.js';
import { git, cpuModel, ROOT, RESULTS, SERVER_CORE, GENERATOR_CORE } from './lib/machine.js';

function commandLine(argv: string[]): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  return [...env, 'npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ');
}

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

interface Running {
  peer: Peer;
  report: PeerReport;
  senders: Identity[];
  receivers: Identity[];
  /** The group scenario's users (empty when it does not run on this peer). */
  groupUsers: Identity[];
  /** Conversation ids by group size, created at the first group run. */
  groups: Map<number, string[]>;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let options: Options | 'help';
  try {
    options = parseOptions(argv, process.env);
  } catch (error) {
    console.error(`${message(error)}\n\n${usage()}`);
    return 2;
  }
  if (options === 'help') {
    console.log(usage());
    return 0;
  }
  const o = options;
  const started = new Date();
  const t0 = performance.now();
  const problems: string[] = [];

  // Pinning: servers on core 0, this process (every thread) on core 1.
  const cores = os.cpus().length;
  let pinNote = '';
  let pinned = o.pin;
  if (pinned && (cores < 2 || !hasTaskset())) {
    pinned = false;
    pinNote = cores < 2 ? 'only one core' : 'taskset not found';
  }
  if (pinned) {
    try {
      pinSelf(GENERATOR_CORE);
    } catch (error) {
      pinned = false;
      pinNote = `taskset failed: ${message(error)}`;
    }
  }
  if (!o.pin) pinNote = 'disabled by --no-pin';

  // Open files: K idle sockets in this process (and as many in the server, which inherits the limit).
  const needed = o.idle + 4 * o.pairs + 1000;
  let limits = fdLimit();
  let fdNote = '';
  if (limits.soft < needed) {
    if (raiseFdLimit(needed)) {
      fdNote = `raised to ${needed} with prlimit`;
    } else {
      const k = Math.max(0, limits.soft - 4 * o.pairs - 1000);
      fdNote = `too low for K=${o.idle}; idle scenario capped at K=${k}`;
      problems.push(
        `open files limit ${limits.soft} too low for ${o.idle} idle connections; used ${k}`,
      );
      o.idle = k;
    }
    limits = fdLimit();
  }

  const report: RunReport = {
    startedAt: started.toISOString(),
    finishedAt: '',
    durationSec: 0,
    command: commandLine(argv),
    commit: git(['rev-parse', '--short', 'HEAD']) || 'nocommit',
    // The suite's own files do not count: the figures are about the server's code.
    dirty: git(['status', '--porcelain', '--', '.', ':(exclude)bench']) !== '',
    node: process.version,
    cpuModel: cpuModel(),
    cores,
    kernel: os.release(),
    pinning: {
      enabled: pinned,
      serverCore: pinned ? SERVER_CORE : null,
      generatorCpus: cpusAllowed('self'),
      note: pinNote,
    },
    fdLimit: { ...limits, note: fdNote },
    options: o,
    peers: [],
    skipped: [],
    ratios: [],
    integrity: [],
    problems,
  };

  const finish = (): number => {
    report.finishedAt = new Date().toISOString();
    report.durationSec = Math.round(performance.now() - t0) / 1000;
    report.ratios = ratios(report);
    report.integrity = integrity(report);
    fs.mkdirSync(RESULTS, { recursive: true });
    const stamp = report.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
    const base = path.join(RESULTS, `${stamp}-${report.commit}`);
    const md = markdown(report);
    fs.writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(`${base}.md`, md);
    fs.writeFileSync(path.join(RESULTS, 'latest.md'), md);
    console.log(`\n${md}`);
    console.log(`written: ${path.relative(ROOT, base)}.json, .md and bench/results/latest.md`);
    // Charts beside them (bench/lib/charts.ts), copied to bench/results/latest-<chart>.svg.
    try {
      const charts = writeCharts(report, base, { latest: true });
      if (charts.length > 0)
        console.log(`charts: ${charts.map((c) => path.relative(ROOT, c)).join(', ')}`);
    } catch (error) {
      console.error(`bench: the charts could not be drawn: ${message(error)}`);
    }
    const failedPeer = report.peers.some((p) => p.startError || p.crashed);
    return report.integrity.length > 0 || failedPeer || problems.length > 0 ? 1 : 0;
  };

  // A hard limit on the whole run: kill our children, write what we have.
  const budgetSec = o.quick ? 240 : 600;
  const watchdog = setTimeout(() => {
    problems.push(`watchdog: the run exceeded ${budgetSec} s and was stopped`);
    killAllChildren();
    process.exit(finish() || 1);
  }, budgetSec * 1000);
  watchdog.unref();

  console.log(
    `bench: ${o.quick ? 'quick' : 'full'} run, peers ${o.peers.join(', ')}, scenarios ${o.scenarios.join(', ')}; generator CPUs ${report.pinning.generatorCpus}`,
  );

  // PostgreSQL and Redis for chat-postgres-redis, where this machine has them.
  let services: Services | undefined;
  if (o.peers.includes('chat-postgres-redis')) {
    try {
      services = startServices(ROOT, pinned ? SERVER_CORE : undefined);
    } catch (error) {
      const said = (error as { stderr?: Buffer }).stderr?.toString().trim();
      report.skipped.push({
        peer: 'chat-postgres-redis',
        reason: `PostgreSQL and Redis could not be started here (scripts/services.sh start: ${said || message(error)})`,
      });
      o.peers = o.peers.filter((p) => p !== 'chat-postgres-redis');
    }
  }

  if (o.peers.some(isChat) && o.build) {
    console.log('bench: npm run build');
    try {
      execFileSync('npm', ['run', 'build', '--silent'], {
        cwd: ROOT,
        stdio: 'inherit',
        timeout: 180_000,
      });
    } catch (error) {
      problems.push(`npm run build failed: ${message(error)}`);
      for (const name of o.peers.filter(isChat)) {
        report.peers.push({ name, description: DESCRIPTIONS[name], startError: 'build failed' });
      }
      o.peers = o.peers.filter((p) => !isChat(p));
    }
  }

  // Start every peer and create its users.
  const running: Running[] = [];
  const names = {
    senders: Array.from({ length: o.pairs }, (_, i) => `snd${i}`),
    receivers: Array.from({ length: o.pairs }, (_, i) => `rcv${i}`),
    // Users of their own, so that the other scenarios' users have no group contacts.
    group: Array.from({ length: o.groupUsers }, (_, i) => `grp${i}`),
  };
  const runsGroups = (name: PeerName) =>
    o.scenarios.includes('group') && o.groupPeers.includes(name);
  for (const name of o.peers) {
    const peerReport: PeerReport = { name, description: DESCRIPTIONS[name] };
    report.peers.push(peerReport);
    const setupStart = performance.now();
    let peer: Peer | undefined;
    try {
      peer = await startPeer(name, {
        root: ROOT,
        core: pinned ? SERVER_CORE : undefined,
        nodeArgs: o.serverNodeArgs,
        services,
      });
      peerReport.pid = peer.child.pid;
      const groupNames = runsGroups(name) ? names.group : [];
      const ids = await peer.identities([...names.senders, ...names.receivers, ...groupNames]);
      running.push({
        peer,
        report: peerReport,
        senders: ids.slice(0, o.pairs),
        receivers: ids.slice(o.pairs, 2 * o.pairs),
        groupUsers: ids.slice(2 * o.pairs),
        groups: new Map(),
      });
      peerReport.setupSec = Math.round(performance.now() - setupStart) / 1000;
      console.log(
        `bench: ${name} pid ${peer.child.pid} at ${peer.baseUrl} (CPUs ${cpusAllowed(peer.child.pid)}), users ready in ${peerReport.setupSec} s`,
      );
    } catch (error) {
      peerReport.startError = message(error);
      console.error(`bench: ${name} did not start: ${peerReport.startError}`);
      await peer?.stop();
    }
  }

  const applies = (scenario: ScenarioName, name: PeerName) =>
    scenario === 'accounts'
      ? isChat(name)
      : scenario === 'idle'
        ? o.idlePeers.includes(name)
        : scenario === 'group'
          ? runsGroups(name)
          : true;

  const runOne = async (r: Running, scenario: ScenarioName) => {
    switch (scenario) {
      case 'throughput':
        return throughput(r.peer, r.senders, r.receivers, {
          pairs: o.pairs,
          window: o.window,
          size: o.size,
          warmupSec: o.warmupSec,
          durationSec: o.durationSec,
          drainSec: o.drainSec,
        });
      case 'open-loop':
        return openLoop(r.peer, r.senders, r.receivers, {
          pairs: o.pairs,
          rate: o.rate,
          size: o.size,
          warmupSec: o.openWarmupSec,
          durationSec: o.openDurationSec,
          drainSec: o.drainSec,
        });
      case 'group':
        return groupScenario(r.peer, r.groupUsers, r.groups, {
          sizes: o.groupSizes,
          users: o.groupUsers,
          rate: o.groupRate,
          size: o.size,
          warmupSec: o.groupWarmupSec,
          durationSec: o.groupDurationSec,
          drainSec: o.drainSec,
        });
      case 'idle':
        return idle(r.peer, [...r.senders, ...r.receivers], {
          connections: o.idle,
          concurrency: o.idleConcurrency,
          timeLimitSec: o.quick ? 30 : 90,
        });
      case 'accounts':
        return accounts(r.peer, [...r.senders, ...r.receivers], {
          logins: o.logins,
          loginConcurrency: o.loginConcurrency,
          historyRequests: o.historyRequests,
          historyConcurrency: o.historyConcurrency,
          seed: 200,
          timeLimitSec: o.quick ? 30 : 60,
        });
    }
  };

  // Traffic scenarios (throughput, open loop, groups) run `rounds` times, the peers in turn
  // (reversed every other round), so that compared figures are taken close together; idle and
  // accounts run once.
  const plan: Array<{ scenario: ScenarioName; round: number; order: Running[] }> = [];
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? running : [...running].reverse();
    for (const scenario of o.scenarios) {
      if (scenario === 'throughput' || scenario === 'open-loop' || scenario === 'group')
        plan.push({ scenario, round, order });
    }
  }
  for (const scenario of o.scenarios) {
    if (scenario === 'accounts' || (scenario === 'idle' && o.idle > 0)) {
      plan.push({ scenario, round: 0, order: running });
    }
  }

  let settleBudgetMs = 30_000;
  for (const { scenario, round, order } of plan) {
    for (const r of order) {
      if (!applies(scenario, r.peer.name)) continue;
      if (!isRunning(r.peer.child)) {
        r.report.crashed ??= `exited with ${r.peer.child.exitCode}: ${r.peer.child.output.slice(-5).join(' | ')}`;
        continue;
      }
      const scenarioStart = performance.now();
      const label =
        o.rounds > 1 && scenario !== 'idle' && scenario !== 'accounts'
          ? ` (round ${round + 1})`
          : '';
      // At most 5 s per run and 30 s per whole run, so that a busy machine cannot stretch the
      // run past its time budget.
      const settled = await settle(
        pinned ? SERVER_CORE : undefined,
        Math.min(5000, settleBudgetMs),
      );
      settleBudgetMs = Math.max(300, settleBudgetMs - settled.waitedSec * 1000);
      if (!settled.quiet) {
        console.log(`bench: the server core was still busy after ${settled.waitedSec} s; going on`);
      }
      process.stdout.write(
        `bench: ${scenario}${label} on ${r.peer.name} (settled in ${settled.waitedSec} s) ... `,
      );
      let result: Awaited<ReturnType<typeof runOne>> | Failure;
      try {
        result = await runOne(r, scenario);
        console.log(`${Math.round(performance.now() - scenarioStart) / 1000} s`);
      } catch (error) {
        result = { error: message(error) };
        console.log(`failed: ${result.error}`);
      }
      switch (scenario) {
        case 'throughput':
          (r.report.throughput ??= []).push(result as ThroughputResult | Failure);
          break;
        case 'open-loop':
          (r.report.openLoop ??= []).push(result as OpenLoopResult | Failure);
          break;
        case 'group':
          (r.report.group ??= []).push(result as GroupRound | Failure);
          break;
        case 'idle':
          r.report.idle = result as IdleResult | Failure;
          break;
        case 'accounts':
          r.report.accounts = result as AccountsResult | Failure;
          break;
      }
      if (!isRunning(r.peer.child)) {
        r.report.crashed = `exited with ${r.peer.child.exitCode}: ${r.peer.child.output.slice(-5).join(' | ')}`;
      }
      await sleep(500);
    }
    // The disk's own figures beside chat's open loop, same rate and timing, on the server core.
    if (scenario === 'open-loop' && order.some((r) => r.peer.name === 'chat')) {
      await settle(pinned ? SERVER_CORE : undefined, Math.min(5000, settleBudgetMs));
      process.stdout.write(`bench: disk floor (round ${round + 1}) ... `);
      const result = diskFloor(pinned ? SERVER_CORE : undefined, {
        rate: o.rate,
        warmupSec: o.openWarmupSec,
        durationSec: o.openDurationSec,
      });
      console.log('error' in result ? `failed: ${result.error}` : 'done');
      (report.disk ??= []).push(result);
    }
  }

  for (const r of running) {
    if (!isRunning(r.peer.child)) r.report.crashed ??= `exited with ${r.peer.child.exitCode}`;
    else {
      // Anything but the relays' start line (the chat server logs only warnings and errors).
      const said = r.peer.child.output.filter((line) => !/ listening on \d+$/.test(line));
      if (said.length > 0) problems.push(`${r.peer.name} wrote: ${said.slice(-5).join(' | ')}`);
    }
    await r.peer.stop();
  }
  services?.stop();
  clearTimeout(watchdog);
  return finish();
}

process.on('exit', () => {
  killAllChildren();
  stopServices();
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
