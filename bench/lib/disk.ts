// Runs bench/micro/disk-floor.ts as a child process pinned to the server's core, on the disk the
// chat peer's data directory lives on, and returns its figures.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiskFloor } from '../micro/disk-floor.js';

export type { DiskFloor };

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../micro/disk-floor.ts');

export function diskFloor(
  core: number | undefined,
  o: { rate: number; warmupSec: number; durationSec: number },
): DiskFloor | { error: string } {
  const command = [
    process.execPath,
    '--import',
    'tsx',
    SCRIPT,
    '--json',
    '--rate',
    String(o.rate),
    '--warmup',
    String(o.warmupSec),
    '--duration',
    String(o.durationSec),
  ];
  const argv = core === undefined ? command : ['taskset', '-c', String(core), ...command];
  try {
    const out = execFileSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      timeout: (o.warmupSec + o.durationSec + 30) * 1000,
      env: { ...process.env, BENCH_DISK_DIR: os.tmpdir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(out.trim().split('\n').pop()!) as DiskFloor;
  } catch (error) {
    return { error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  }
}
