// Configuration: one TypeBox schema gives the types, the defaults and the documentation of every
// setting. `loadConfig` reads the environment once and fails listing every invalid value.
import Type, { type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import path from 'node:path';

const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description });

/** Every setting, keyed by its environment variable name. */
export const ConfigSchema = Type.Object({
  PORT: Int(3000, 0, 65535, 'TCP port to listen on (0 picks a free one).'),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'Interface to bind.' }),
  LISTEN_BACKLOG: Int(
    511,
    1,
    65_535,
    'Connections the kernel queues until the server accepts them (capped by net.core.somaxconn); one that finds the queue full waits for its SYN to be retried (1 s, then 3 s, ...).',
  ),
  PUBLIC_URL: Type.String({
    default: '',
    description:
      "The server's public origin (e.g. https://chat.example.com); else the request's Host.",
  }),
  NODE_ENV: Type.Union(
    [Type.Literal('development'), Type.Literal('production'), Type.Literal('test')],
    {
      default: 'development',
      description: 'development, production or test.',
    },
  ),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level.' },
  ),
  DATA_DIR: Type.String({
    default: './data',
    minLength: 1,
    description: 'Where SQLite data and the generated JWT secret live.',
  }),
  DATABASE_URL: Type.String({
    default: '',
    pattern: '^(|sqlite:.+|postgres(ql)?://.+)$',
    description: '`sqlite:PATH` or `postgres://...`; empty means `sqlite:$DATA_DIR/chat.db`.',
  }),
  DATABASE_POOL_SIZE: Int(
    10,
    1,
    1000,
    'Most connections to PostgreSQL per node (one is held by each commit of the message writer).',
  ),
  REDIS_URL: Type.String({
    default: '',
    pattern: '^(|rediss?://.+)$',
    description:
      'Redis for fan-out and presence across nodes; empty means one node (in-process bus). Needs JWT_SECRET.',
  }),
  SQLITE_CACHE_MIB: Int(
    64,
    2,
    4096,
    "SQLite page cache per connection in MiB (two connections: the writer's and the readers'); held only once read.",
  ),
  SQLITE_THREAD: Type.Boolean({
    default: true,
    description:
      'Commit SQLite writes on a worker thread, so that the event loop never waits for an fsync; false commits on the event loop.',
  }),
  JWT_SECRET: Type.String({
    default: '',
    pattern: '^(|.{32,})$',
    description:
      'HS256 key, at least 32 characters; empty means a random one kept in DATA_DIR/jwt-secret.',
  }),
  ACCESS_TOKEN_TTL_SEC: Int(900, 30, 86_400, 'Lifetime of an access token (JWT).'),
  REFRESH_TOKEN_TTL_SEC: Int(
    30 * 86_400,
    300,
    365 * 86_400,
    'Lifetime of a session without use of its refresh token.',
  ),
  WS_TICKET_TTL_SEC: Int(30, 5, 300, 'Lifetime of a single-use WebSocket ticket.'),
  ARGON2_MEMORY_KIB: Int(
    19_456,
    19_456,
    1_048_576,
    'argon2id memory cost in KiB (minimum 19 MiB).',
  ),
  ARGON2_TIME_COST: Int(2, 2, 10, 'argon2id iterations (minimum 2).'),
  CORS_ORIGINS: Type.String({
    default: '',
    description: 'Comma-separated browser origins allowed for CORS and WebSocket handshakes.',
  }),
  TRUST_PROXY: Type.Boolean({
    default: false,
    description: 'Take the client address from X-Forwarded-For.',
  }),
  RATE_REGISTER_PER_MIN: Int(120, 1, 1_000_000, 'Registrations per client address per minute.'),
  RATE_LOGIN_PER_MIN: Int(
    120,
    1,
    1_000_000,
    'Login attempts per client address per minute (token refreshes are counted apart, with the same limit).',
  ),
  RATE_LOGIN_SOURCE_FAILURES: Int(
    5,
    1,
    1_000_000,
    'Failed logins per account from one source (address, or device cookie) before attempts wait.',
  ),
  RATE_LOGIN_ACCOUNT_FAILURES: Int(
    100,
    1,
    10_000_000,
    'Failed logins per account from all sources before unknown sources wait too.',
  ),
  RATE_LOGIN_DELAY_SEC: Int(
    1,
    1,
    3_600,
    'First wait of a throttled login; doubles with each further failure.',
  ),
  RATE_LOGIN_MAX_DELAY_SEC: Int(900, 1, 86_400, 'Longest wait of a throttled login.'),
  RATE_LOGIN_FAILURE_MEMORY_SEC: Int(
    86_400,
    1,
    30 * 86_400,
    'Failed logins are forgotten this long after the last one.',
  ),
  RATE_LOGIN_KNOWN_SOURCE_SEC: Int(
    30 * 86_400,
    60,
    400 * 86_400,
    'How long an address or device stays known to an account after logging in to it.',
  ),
  RATE_API_PER_MIN: Int(
    1200,
    1,
    10_000_000,
    'Other HTTP requests per minute: per account with a valid token, else per client address.',
  ),
  RATE_WS_HANDSHAKES_PER_MIN: Int(
    600,
    1,
    10_000_000,
    'WebSocket handshakes per client address per minute (refilled continuously; bursts up to the same number).',
  ),
  RATE_WS_ERRORS_PER_MIN: Int(
    60,
    1,
    1_000_000,
    "Error frames for a client's mistakes per account per minute; one more closes the WebSocket (1008).",
  ),
  RATE_MESSAGES_PER_SEC: Int(20, 1, 1_000_000, 'Sustained messages per account per second.'),
  RATE_MESSAGES_BURST: Int(100, 1, 1_000_000, 'Message burst per account.'),
  RATE_SHARED_LEASE_PERCENT: Int(
    10,
    1,
    100,
    'With REDIS_URL: the share of a burst (messages, handshakes) a node leases from Redis at a time.',
  ),
  WS_PING_INTERVAL_MS: Int(
    25_000,
    100,
    600_000,
    'Server ping interval; a connection that misses a pong is dropped.',
  ),
  WS_SEND_QUEUE_BYTES: Int(
    1_048_576,
    16_384,
    268_435_456,
    'Bytes queued to a slow reader before it is closed with 1013.',
  ),
  WS_HANDSHAKE_CONCURRENCY: Int(
    64,
    1,
    100_000,
    'WebSocket handshakes authenticated at once; the others wait in arrival order, so a reconnect storm is served first come, first served.',
  ),
  SYNC_PAGE_SIZE: Int(500, 1, 5000, 'Messages per page when replaying a stream on the WebSocket.'),
  GROUP_MAX_MEMBERS: Int(256, 2, 100_000, 'Most members a group may have.'),
  GROUP_TITLE_MAX: Int(100, 1, 1000, 'Longest group title, in characters.'),
  CONVERSATION_MEMBER_PREVIEW: Int(
    20,
    1,
    1000,
    'Members listed per conversation in GET /conversations; larger groups give this many and memberCount.',
  ),
  RECEIPTS_FLUSH_MS: Int(
    500,
    10,
    60_000,
    'How long delivered receipts gather before their watermarks are written and sent.',
  ),
  TYPING_EXPIRES_MS: Int(5000, 500, 60_000, 'How long a typing indicator shows unless repeated.'),
  RATE_TYPING_PER_SEC: Int(2, 1, 1000, 'Typing frames relayed per connection per second.'),
  RATE_TYPING_BURST: Int(5, 1, 1000, 'Typing frames relayed per connection at once.'),
  PRESENCE_COALESCE_MS: Int(
    2000,
    0,
    60_000,
    'How long a presence change waits before it is pushed to contacts (a flapping connection pushes nothing).',
  ),
  METRICS_TOKEN: Type.String({
    default: '',
    description: 'Bearer token for /metrics outside development.',
  }),
  SHUTDOWN_TIMEOUT_MS: Int(10_000, 100, 600_000, 'How long shutdown waits for in-flight work.'),
  SHUTDOWN_DRAIN_MS: Int(
    0,
    0,
    600_000,
    'On SIGTERM, how long /readyz answers 503 while the node still serves, before it shuts down (behind a load balancer: more than its check interval times its fall count).',
  ),
  SHUTDOWN_CLOSE_SPREAD_MS: Int(
    0,
    0,
    600_000,
    'At shutdown, the window over which WebSockets are closed in batches (0: all at once); below SHUTDOWN_TIMEOUT_MS.',
  ),
});

export type Config = Static<typeof ConfigSchema>;

/** One validator per setting, so that every invalid one is reported, not just the first. */
const validators = Object.entries(ConfigSchema.properties).map(
  ([key, schema]) => [key, Compile(schema as TSchema)] as const,
);
/** Settings whose values are never echoed in an error. */
const SECRETS = new Set(['JWT_SECRET', 'METRICS_TOKEN', 'DATABASE_URL', 'REDIS_URL']);

/** Thrown by `loadConfig` with one line per invalid setting. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

function coerce(schema: TSchema, raw: string): unknown {
  const type = (schema as { type?: string }).type;
  if (type === 'integer' || type === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (type === 'boolean')
    return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  return raw;
}

/** Reads settings from `env` (defaults fill the gaps) and validates them all at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const raw = env[key];
    input[key] =
      raw === undefined ? (schema as unknown as { default: unknown }).default : coerce(schema, raw);
  }
  const problems: string[] = [];
  for (const [key, validator] of validators) {
    if (validator.Check(input[key])) continue;
    const shown = SECRETS.has(key) ? '(hidden)' : JSON.stringify(env[key] ?? '');
    const { description } = ConfigSchema.properties[key as keyof Config] as {
      description?: string;
    };
    problems.push(
      `${key}=${shown}: ${validator.Errors(input[key])[0]?.message ?? 'invalid'} (${description})`,
    );
  }
  // Several nodes must sign and verify tokens with one key: a generated one is per node.
  if (input.REDIS_URL && !input.JWT_SECRET)
    problems.push(
      'JWT_SECRET: required when REDIS_URL is set (every node must share the same key)',
    );
  // The spread runs inside the shutdown's time limit: it must leave room for the rest.
  if (
    typeof input.SHUTDOWN_CLOSE_SPREAD_MS === 'number' &&
    typeof input.SHUTDOWN_TIMEOUT_MS === 'number' &&
    input.SHUTDOWN_CLOSE_SPREAD_MS >= input.SHUTDOWN_TIMEOUT_MS
  )
    problems.push(
      `SHUTDOWN_CLOSE_SPREAD_MS: must be less than SHUTDOWN_TIMEOUT_MS (${input.SHUTDOWN_TIMEOUT_MS})`,
    );
  if (problems.length > 0) throw new ConfigError(problems);
  return input as Config;
}

/** Where the store lives, resolved from DATABASE_URL or DATA_DIR. */
export function storageTarget(
  config: Config,
): { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string } {
  const url = config.DATABASE_URL;
  if (url.startsWith('postgres')) return { kind: 'postgres', url };
  if (url.startsWith('sqlite:')) return { kind: 'sqlite', file: url.slice('sqlite:'.length) };
  return { kind: 'sqlite', file: path.join(config.DATA_DIR, 'chat.db') };
}

/** The comma-separated CORS_ORIGINS as a list. */
export function allowedOrigins(config: Config): string[] {
  return config.CORS_ORIGINS.split(',')
    .map((o) => o.trim().replace(/\/$/, ''))
    .filter(Boolean);
}
