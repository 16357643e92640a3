// Child processes the suite starts (and only those): spawn pinned to a core, wait until ready,
// stop by PID; plus the /proc readings the report needs (CPU ticks, RSS, affinity, fd limit).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  /** Last lines of stdout and stderr, for the report when something goes wrong. */
  output: string[];
  exitCode: number | null | undefined;
  exited: Promise<void>;
}

const children = new Set<Child>();

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of this process to `core` (the generator re-pins itself in place). */
export function pinSelf(core: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], {
    stdio: 'ignore',
  });
}

/** Starts `command`, pinned with `taskset -c core` when core is given (taskset execs: same PID). */
export function startChild(
  name: string,
  command: string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; core?: number },
): Child {
  const argv =
    options.core === undefined ? command : ['taskset', '-c', String(options.core), ...command];
  const proc = spawn(argv[0] as string, argv.slice(1), {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${argv.join(' ')}`);
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue;
      output.push(line.slice(0, 500));
      if (output.length > 40) output.shift();
    }
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const child: Child = {
    name,
    pid: proc.pid,
    proc,
    output,
    exitCode: undefined,
    exited: new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        child.exitCode = code ?? (signal ? -1 : null);
        children.delete(child);
        resolve();
      }),
    ),
  };
  children.add(child);
  return child;
}

export function isRunning(child: Child): boolean {
  return child.exitCode === undefined;
}

/** SIGTERM, then SIGKILL after `graceMs`; only this child's PID. */
export async function stopChild(child: Child, graceMs = 5000): Promise<void> {
  if (!isRunning(child)) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** Last resort on exit or a signal: SIGKILL every child still running, by PID. */
export function killAllChildren(): void {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Polls `url` until it answers 200, the child exits, or `timeoutMs` passes. */
export async function waitReady(
  child: Child,
  url: string,
  timeoutMs = 20_000,
  pollMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(child)) {
      throw new Error(`${child.name} exited (${child.exitCode}): ${child.output.join(' | ')}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
    });
    if (ok) return;
    await sleep(pollMs);
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of `pid` in seconds (all threads), from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** CPU seconds of the processes of `pids` that still exist. */
function sumCpuSeconds(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += cpuSeconds(pid);
    } catch {
      /* gone */
    }
  }
  return total;
}

/** VmRSS of `pid` in KiB. */
export function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : NaN;
}

export function cpusAllowed(pid: number | 'self'): string {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return /^Cpus_allowed_list:\s+(.+)$/m.exec(status)?.[1] ?? '?';
}

/** The soft and hard limits on open files of this process. */
export function fdLimit(): { soft: number; hard: number } {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const parse = (s: string | undefined) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: parse(match?.[1]), hard: parse(match?.[2]) };
}

/** Tries `prlimit` on this process (root may raise the hard limit); true if the soft limit is now >= want. */
export function raiseFdLimit(want: number): boolean {
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], {
      stdio: 'ignore',
    });
  } catch {
    /* not permitted */
  }
  return fdLimit().soft >= want;
}

/** CPU use of one process over an interval, as a share of one core. */
/** A process to meter: a PID, this process, or a set of PIDs read at each reading (a server and its database). */
export type Metered = number | 'self' | (() => number[]);

export class CpuMeter {
  private readonly startCpu: number;
  private readonly startWall = performance.now();

  constructor(private readonly pid: Metered) {
    this.startCpu = this.read();
  }

  private read(): number {
    if (this.pid === 'self') {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    }
    if (typeof this.pid === 'number') return cpuSeconds(this.pid);
    return sumCpuSeconds(this.pid());
  }

  /** { seconds of CPU, percent of one core } since construction. */
  stop(): { cpuSec: number; pct: number } {
    const cpuSec = this.read() - this.startCpu;
    const wallSec = (performance.now() - this.startWall) / 1000;
    return { cpuSec: round(cpuSec, 2), pct: round((100 * cpuSec) / Math.max(wallSec, 1e-9), 1) };
  }
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Busy CPU seconds of the whole machine (all cores), from the first line of /proc/stat. */
function machineBusySeconds(): number {
  return cpuTicks(undefined).busy / ticksPerSecond();
}

/**
 * CPU used on the machine by anything but the given processes (the kernel's network work for
 * our loopback traffic included), as a share of one core: a noise indicator.
 */
export class OtherCpuMeter {
  private readonly startBusy = machineBusySeconds();
  private readonly startOurs: number;
  private readonly startWall = performance.now();

  constructor(private readonly pids: Metered[]) {
    this.startOurs = this.ours();
  }

  private ours(): number {
    let total = 0;
    for (const pid of this.pids) {
      if (pid === 'self') {
        const u = process.cpuUsage();
        total += (u.user + u.system) / 1e6;
      } else if (typeof pid === 'function') {
        total += sumCpuSeconds(pid());
      } else {
        try {
          total += cpuSeconds(pid);
        } catch {
          /* gone */
        }
      }
    }
    return total;
  }

  stop(): { pct: number } {
    const other = machineBusySeconds() - this.startBusy - (this.ours() - this.startOurs);
    const wallSec = (performance.now() - this.startWall) / 1000;
    return { pct: round((100 * Math.max(0, other)) / Math.max(wallSec, 1e-9), 1) };
  }
}

/** Busy and total ticks of one CPU (`cpuN` in /proc/stat), or of the machine when undefined. */
function cpuTicks(core: number | undefined): { busy: number; total: number } {
  const name = core === undefined ? 'cpu' : `cpu${core}`;
  const line = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  const f = (line ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return { busy, total: busy + (f[3] ?? 0) + (f[4] ?? 0) };
}

/** Dirty and Writeback memory (KiB): file data the kernel has yet to write. */
function unwrittenKiB(): number {
  const info = fs.readFileSync('/proc/meminfo', 'utf8');
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? 0);
  return kib('Dirty') + kib('Writeback');
}

/**
 * Waits until the previous run's aftermath is over before a measured run starts: `sync` flushes
 * what any peer left to write (a database's pages would otherwise slow the next peer's fsyncs),
 * then the server core must be at least 90% idle over 300 ms with under 16 MiB unwritten.
 * Bounded by `maxMs`; returns how long it waited and whether the machine got quiet.
 */
export async function settle(
  core: number | undefined,
  maxMs = 5_000,
): Promise<{ waitedSec: number; quiet: boolean }> {
  const start = performance.now();
  try {
    execFileSync('sync', { stdio: 'ignore', timeout: maxMs });
  } catch {
    /* a slow sync still flushed what it could */
  }
  for (;;) {
    const a = cpuTicks(core);
    await sleep(300);
    const b = cpuTicks(core);
    const idle = 1 - (b.busy - a.busy) / Math.max(1, b.total - a.total);
    const waited = performance.now() - start;
    const quiet = idle >= 0.9 && unwrittenKiB() < 16 * 1024;
    if (quiet || waited >= maxMs) return { waitedSec: round(waited / 1000, 1), quiet };
  }
}
