// Where the bench scripts run and write, and what a result file says about where it was
// measured: the commit and the CPU model; plus the small argv helpers of the micro-benchmarks.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where every bench script writes its results. */
export const RESULTS = path.join(ROOT, 'bench', 'results');
/** When pinned: the server (and its databases) on core 0, the load generator on core 1. */
export const SERVER_CORE = 0;
export const GENERATOR_CORE = 1;

/** `git ARGS` in the project's root, trimmed; '' when git fails or is missing. */
export function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return '';
  }
}

/** The CPU's model name (/proc/cpuinfo, else what Node reports). */
export function cpuModel(): string {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

/** `--name VALUE` from the command line, else `fallback`. */
export function option(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
}

/** A comma-separated list of counts from 1 to 1000 (`1,2,4,8`). */
export function counts(s: string): number[] {
  return s.split(',').map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`not a count: ${v}`);
    return n;
  });
}

/**
 * Extra `node` flags for the chat server (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): `flags`
 * when given, else BENCH_SERVER_NODE_ARGS; space-separated.
 */
export function serverNodeArgs(flags: string | undefined, env = process.env): string[] {
  return (flags ?? env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
}
