// PostgreSQL and Redis for the chat-postgres-redis peer: throw-away servers started with
// scripts/services.sh (never a system-wide one), pinned to the server core like the chat server,
// and stopped by that script when the run ends.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Services {
  databaseUrl: string;
  redisUrl: string;
  /** PIDs of the PostgreSQL processes (postmaster and its children, backends included) and Redis. */
  pids(): number[];
  stop(): void;
}

let running: Services | undefined;

/** Starts both servers; throws with the script's message when they cannot run here. */
export function startServices(root: string, core: number | undefined): Services {
  const script = path.join(root, 'scripts', 'services.sh');
  const dir = execFileSync('bash', [script, 'start'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  })
    .toString()
    .trim();
  const env = fs.readFileSync(path.join(dir, 'env'), 'utf8');
  const read = (name: string) => {
    const value = new RegExp(`^export ${name}=(.+)$`, 'm').exec(env)?.[1];
    if (!value) throw new Error(`services: ${name} missing from ${dir}/env`);
    return value;
  };
  const postmaster = Number(
    fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  const redis = Number(fs.readFileSync(path.join(dir, 'redis.pid'), 'utf8').trim());
  const pids = () => [postmaster, ...childrenOf(postmaster), redis];
  if (core !== undefined) {
    // Backends forked later inherit the postmaster's affinity.
    for (const pid of pids()) {
      execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
    }
  }
  let stopped = false;
  running = {
    databaseUrl: read('DATABASE_URL'),
    redisUrl: read('REDIS_URL'),
    pids,
    stop() {
      if (stopped) return;
      stopped = true;
      execFileSync('bash', [script, 'stop', dir], { stdio: 'ignore', timeout: 60_000 });
      running = undefined;
    },
  };
  return running;
}

/** Stops the servers if they still run (on exit, after a signal). */
export function stopServices(): void {
  try {
    running?.stop();
  } catch {
    /* best effort on the way out */
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
