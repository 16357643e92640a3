// Settings of a run: defaults for the full run, smaller ones for BENCH_QUICK=1 (or --quick), and
// flags or BENCH_* variables that override any of them. `--help` prints the list.
import { parseArgs } from 'node:util';
import { serverNodeArgs } from './machine.js';

export const PEERS = ['chat', 'chat-postgres-redis', 'ws-relay', 'socketio-relay'] as const;
/** The peers that are this server (the others are the relays it is compared with). */
export const CHAT_PEERS = ['chat', 'chat-postgres-redis'] as const;
/**
 * Idle connections cost the same whatever the storage, so by default the PostgreSQL variant skips
 * that scenario (it keeps the full run under five minutes).
 */
const IDLE_PEERS = PEERS.filter((p) => p !== 'chat-postgres-redis');
/** The peers that have groups (the ws relay has none). */
export const GROUP_CAPABLE: readonly PeerName[] = ['chat', 'chat-postgres-redis', 'socketio-relay'];
/** By default the group scenario compares chat on SQLite with the Socket.IO room broadcast. */
const GROUP_PEERS: PeerName[] = ['chat', 'socketio-relay'];
export const isChat = (name: PeerName): boolean => (CHAT_PEERS as readonly string[]).includes(name);
export type PeerName = (typeof PEERS)[number];
export const SCENARIOS = ['throughput', 'open-loop', 'group', 'idle', 'accounts'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Options {
  quick: boolean;
  peers: PeerName[];
  scenarios: ScenarioName[];
  /** Sender/receiver pairs, one connection each. */
  pairs: number;
  /** Messages in flight per sender in the closed loop. */
  window: number;
  /** Characters of content per message. */
  size: number;
  warmupSec: number;
  durationSec: number;
  /** Open loop: messages per second over all pairs. */
  rate: number;
  openWarmupSec: number;
  openDurationSec: number;
  /** Idle connections per peer, and how many handshakes run at once. */
  idle: number;
  idleConcurrency: number;
  idlePeers: PeerName[];
  logins: number;
  loginConcurrency: number;
  historyRequests: number;
  historyConcurrency: number;
  /** How long to wait for outstanding acks and deliveries after sending stops. */
  drainSec: number;
  /** Times the throughput, open-loop and group scenarios run (peers in turn each round). */
  rounds: number;
  /** Group sizes (members, sender included), each run on the same connections in turn. */
  groupSizes: number[];
  /** Group scenario: users online, one connection each; a size S makes floor(U / S) groups. */
  groupUsers: number;
  /** Group scenario: deliveries per second offered (send rate = this / (S - 1) messages/s). */
  groupRate: number;
  groupWarmupSec: number;
  groupDurationSec: number;
  groupPeers: PeerName[];
  pin: boolean;
  build: boolean;
  /** Extra node flags for the chat server process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  serverNodeArgs: string[];
}

const FULL = {
  pairs: 50,
  window: 10,
  size: 100,
  warmupSec: 2,
  durationSec: 10,
  rate: 5000,
  openWarmupSec: 2,
  openDurationSec: 10,
  idle: 10_000,
  idleConcurrency: 200,
  logins: 200,
  loginConcurrency: 8,
  historyRequests: 2000,
  historyConcurrency: 8,
  drainSec: 10,
  rounds: 2,
  groupUsers: 100,
  groupRate: 30_000,
  groupWarmupSec: 1,
  groupDurationSec: 4,
};

const QUICK: typeof FULL = {
  pairs: 10,
  window: 10,
  size: 100,
  warmupSec: 1,
  durationSec: 3,
  rate: 2000,
  openWarmupSec: 1,
  openDurationSec: 3,
  idle: 1000,
  idleConcurrency: 100,
  logins: 40,
  loginConcurrency: 8,
  historyRequests: 300,
  historyConcurrency: 8,
  drainSec: 5,
  rounds: 1,
  groupUsers: 100,
  groupRate: 15_000,
  groupWarmupSec: 1,
  groupDurationSec: 2,
};

type NumericKey = keyof typeof FULL;

/** Flag name, environment variable and description of every numeric setting. */
const NUMERIC: Array<[NumericKey, string, string]> = [
  ['pairs', 'BENCH_PAIRS', 'N sender/receiver pairs'],
  ['window', 'BENCH_WINDOW', 'W messages in flight per sender (closed loop)'],
  ['size', 'BENCH_SIZE', 'content length in characters'],
  ['warmupSec', 'BENCH_WARMUP', 'closed-loop warm-up seconds'],
  ['durationSec', 'BENCH_DURATION', 'T: closed-loop measured seconds'],
  ['rate', 'BENCH_RATE', 'open-loop messages/s in total'],
  ['openWarmupSec', 'BENCH_OPEN_WARMUP', 'open-loop warm-up seconds'],
  ['openDurationSec', 'BENCH_OPEN_DURATION', 'open-loop measured seconds'],
  ['idle', 'BENCH_IDLE', 'K idle connections per peer'],
  ['idleConcurrency', 'BENCH_IDLE_CONCURRENCY', 'handshakes in flight'],
  ['logins', 'BENCH_LOGINS', 'logins in the login storm'],
  ['loginConcurrency', 'BENCH_LOGIN_CONCURRENCY', 'logins in flight'],
  ['historyRequests', 'BENCH_HISTORY', 'history page requests'],
  ['historyConcurrency', 'BENCH_HISTORY_CONCURRENCY', 'history requests in flight'],
  ['drainSec', 'BENCH_DRAIN', 'seconds to wait for outstanding acks/deliveries'],
  ['rounds', 'BENCH_ROUNDS', 'rounds of the throughput, open-loop and group scenarios'],
  [
    'groupUsers',
    'BENCH_GROUP_USERS',
    'U users online in the group scenario (floor(U/S) groups of S)',
  ],
  ['groupRate', 'BENCH_GROUP_RATE', 'group scenario: deliveries/s offered, per group size'],
  ['groupWarmupSec', 'BENCH_GROUP_WARMUP', 'group scenario: warm-up seconds per size'],
  ['groupDurationSec', 'BENCH_GROUP_DURATION', 'group scenario: measured seconds per size'],
];

const FLAG: Record<NumericKey, string> = {
  pairs: 'pairs',
  window: 'window',
  size: 'size',
  warmupSec: 'warmup',
  durationSec: 'duration',
  rate: 'rate',
  openWarmupSec: 'open-warmup',
  openDurationSec: 'open-duration',
  idle: 'idle',
  idleConcurrency: 'idle-concurrency',
  logins: 'logins',
  loginConcurrency: 'login-concurrency',
  historyRequests: 'history',
  historyConcurrency: 'history-concurrency',
  drainSec: 'drain',
  rounds: 'rounds',
  groupUsers: 'group-users',
  groupRate: 'group-rate',
  groupWarmupSec: 'group-warmup',
  groupDurationSec: 'group-duration',
};

const GROUP_SIZES = [10, 100];

export function usage(): string {
  const lines = [
    'npm run bench -- [flags]      (or: npx tsx bench/run.ts [flags])',
    '',
    '  --quick                 ~1 minute smoke run (also BENCH_QUICK=1)',
    `  --peers LIST            comma-separated, default ${PEERS.join(',')} (BENCH_PEERS)`,
    `  --scenarios LIST        comma-separated, default ${SCENARIOS.join(',')} (BENCH_SCENARIOS)`,
    '  --idle-peers LIST       peers that run the idle scenario, default all but chat-postgres-redis (BENCH_IDLE_PEERS)',
    `  --group-sizes LIST      members per group (sender included), default ${GROUP_SIZES.join(',')} (BENCH_GROUP_SIZES)`,
    `  --group-peers LIST      peers that run the group scenario, of ${GROUP_CAPABLE.join(',')}; default ${GROUP_PEERS.join(',')} (BENCH_GROUP_PEERS)`,
    '  --no-pin                do not pin server to core 0 and generator to core 1',
    '  --no-build              do not run `npm run build` before starting the chat server',
    '  --server-node-args=STR  extra node flags for the chat server, e.g. --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"',
    '                          (BENCH_SERVER_NODE_ARGS)',
  ];
  for (const [key, env, text] of NUMERIC) {
    lines.push(
      `  --${FLAG[key].padEnd(22)}${text}; default ${FULL[key]}, quick ${QUICK[key]} (${env})`,
    );
  }
  return lines.join('\n');
}

function list<T extends string>(
  raw: string | undefined,
  allowed: readonly T[],
  what: string,
  defaults: readonly T[] = allowed,
): T[] {
  if (raw === undefined || raw === '') return [...defaults];
  const items = raw.split(',').map((s) => s.trim());
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new Error(`unknown ${what} "${item}"; choose from ${allowed.join(', ')}`);
    }
  }
  return items as T[];
}

/** Reads flags (argv) and BENCH_* variables (env); flags win. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | 'help' {
  const numericFlags = Object.fromEntries(
    NUMERIC.map(([key]) => [FLAG[key], { type: 'string' as const }]),
  );
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      quick: { type: 'boolean' },
      peers: { type: 'string' },
      scenarios: { type: 'string' },
      'idle-peers': { type: 'string' },
      'group-sizes': { type: 'string' },
      'group-peers': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'no-build': { type: 'boolean' },
      'server-node-args': { type: 'string' },
      ...numericFlags,
    },
    strict: true,
  });
  if (values.help) return 'help';
  const quick = values.quick === true || env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const base = quick ? QUICK : FULL;
  const numbers = { ...base };
  for (const [key, envName] of NUMERIC) {
    const raw = (values as Record<string, unknown>)[FLAG[key]] ?? env[envName];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${FLAG[key]} must be a number >= 0`);
    numbers[key] = n;
  }
  for (const key of [
    'pairs',
    'window',
    'size',
    'rate',
    'rounds',
    'groupUsers',
    'groupRate',
  ] as const) {
    if (numbers[key] < 1) throw new Error(`--${FLAG[key]} must be at least 1`);
    numbers[key] = Math.floor(numbers[key]);
  }
  numbers.size = Math.min(numbers.size, 4000);
  if (numbers.groupDurationSec <= 0) throw new Error('--group-duration must be above 0');
  const sizesRaw = (values['group-sizes'] as string | undefined) ?? env.BENCH_GROUP_SIZES;
  const groupSizes =
    sizesRaw === undefined || sizesRaw === ''
      ? [...GROUP_SIZES]
      : sizesRaw.split(',').map((s) => Number(s.trim()));
  for (const size of groupSizes) {
    if (!Number.isInteger(size) || size < 2 || size > numbers.groupUsers) {
      throw new Error(
        `--group-sizes: each size must be an integer from 2 to --group-users (${numbers.groupUsers})`,
      );
    }
  }
  const groupPeers = list(
    (values['group-peers'] as string | undefined) ?? env.BENCH_GROUP_PEERS,
    GROUP_CAPABLE,
    'group peer',
    GROUP_PEERS,
  );
  return {
    quick,
    peers: list((values.peers as string | undefined) ?? env.BENCH_PEERS, PEERS, 'peer'),
    scenarios: list(
      (values.scenarios as string | undefined) ?? env.BENCH_SCENARIOS,
      SCENARIOS,
      'scenario',
    ),
    idlePeers: list(
      (values['idle-peers'] as string | undefined) ?? env.BENCH_IDLE_PEERS,
      PEERS,
      'peer',
      IDLE_PEERS,
    ),
    groupSizes,
    groupPeers,
    pin: values['no-pin'] !== true && env.BENCH_NO_PIN !== '1',
    build: values['no-build'] !== true && env.BENCH_NO_BUILD !== '1',
    serverNodeArgs: serverNodeArgs(values['server-node-args'] as string | undefined, env),
    ...numbers,
  };
}
