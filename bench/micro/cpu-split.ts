// Who takes the server core: samples, once a second, the CPU of every process pinned to one core
// (`taskset -c 0`, as `npm run bench` pins the chat server and, for chat-postgres-redis, its
// PostgreSQL and Redis), grouped by command: node (the chat server), postgres (postmaster,
// backends, WAL writer, checkpointer...) and redis-server. Run it beside a bench, under the same
// lock:
//
//   flock /tmp/bench.lock bash -c 'node --import tsx bench/micro/cpu-split.ts --seconds 60 \
//     > /tmp/split.txt & sp=$!; npm run bench -- --no-build --peers chat-postgres-redis \
//     --scenarios throughput,open-loop --rounds 1; kill $sp'
//
// (`node --import tsx`, not `npx tsx`: `$!` is then the sampler itself, and `kill` ends it; a
// sampler left running would hold the lock until its --seconds are over.)
//
// Prints one line per second (CPU seconds per wall second of each group) and, at the end, the
// shares of each group over the seconds in which the pinned processes together used at least
// `--busy` of the core (default 0.8): the saturated part of the run. Reads /proc only; bounded by
// `--seconds` (default 120, at most 600).
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  const value = at >= 0 ? Number(args[at + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
};
const seconds = Math.min(600, flag('seconds', 120));
const coreAt = args.indexOf('--core');
const core = coreAt >= 0 ? String(Number(args[coreAt + 1])) : '0';
const busy = flag('busy', 0.8);
const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

type Group = 'node' | 'postgres' | 'redis';
const GROUPS: Group[] = ['node', 'postgres', 'redis'];

function groupOf(comm: string): Group | undefined {
  if (comm === 'node' || comm.startsWith('node')) return 'node';
  if (comm.startsWith('postgres') || comm.startsWith('postmaster')) return 'postgres';
  if (comm.startsWith('redis-server')) return 'redis';
  return undefined;
}

/** CPU ticks (utime + stime, all threads) of each pinned process, by pid. */
function sample(): Map<number, { group: Group; ticks: number }> {
  const out = new Map<number, { group: Group; ticks: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
      if (/^Cpus_allowed_list:\s+(.+)$/m.exec(status)?.[1] !== core) continue;
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const group = groupOf(comm);
      if (!group) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(entry), { group, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const rows: Array<Record<Group, number>> = [];
process.on('SIGTERM', () => {
  summarize();
  process.exit(0);
});
let previous = sample();
let previousAt = performance.now();
console.log(`# pinned to core ${core}; CPU seconds per wall second; ${ticks} ticks/s`);
console.log('t\tnode\tpostgres\tredis\ttotal');
for (let t = 1; t <= seconds; t++) {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const now = sample();
  const at = performance.now();
  const wall = (at - previousAt) / 1000;
  const row: Record<Group, number> = { node: 0, postgres: 0, redis: 0 };
  for (const [pid, s] of now) {
    // A process born in this second counts from 0; one that died is lost (short-lived only).
    row[s.group] += (s.ticks - (previous.get(pid)?.ticks ?? 0)) / ticks / wall;
  }
  rows.push(row);
  const total = row.node + row.postgres + row.redis;
  console.log(
    `${t}\t${row.node.toFixed(2)}\t${row.postgres.toFixed(2)}\t${row.redis.toFixed(2)}\t${total.toFixed(2)}`,
  );
  previous = now;
  previousAt = at;
}

summarize();

/** The shares over the saturated seconds; also printed when the sampler is stopped early. */
function summarize(): void {
  const saturated = rows.filter((r) => r.node + r.postgres + r.redis >= busy);
  const sum = (g: Group) => saturated.reduce((s, r) => s + r[g], 0);
  const all = GROUPS.reduce((s, g) => s + sum(g), 0);
  console.log(
    `# ${saturated.length} s with the pinned processes at >= ${busy} of the core; shares there: ` +
      GROUPS.map((g) => `${g} ${all > 0 ? ((100 * sum(g)) / all).toFixed(1) : '-'}%`).join(', '),
  );
}
