// Composition root: config -> logger -> store -> bus + presence + limits -> buildApp -> listen ->
// signals.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { ConfigError, loadConfig, storageTarget, type Config } from './config.js';
import { loggerOptions } from './logger.js';
import { buildApp, type AppDeps } from './app.js';
import { openSqliteStore } from './storage/sqlite-store.js';
import { openWorkerSqliteStore } from './storage/worker-sqlite-store.js';
import type { Store } from './storage/store.js';
import { openPostgresStore } from './storage/postgres-store.js';
import { MemoryBus } from './bus/memory-bus.js';
import type { Bus } from './bus/bus.js';
import { openRedisBus } from './bus/redis-bus.js';
import { RedisPresence } from './bus/redis-presence.js';
import { LocalPresence, type Presence } from './bus/presence.js';
import type { Limits } from './limits/limits.js';
import { MemoryLimits } from './limits/memory-limits.js';
import { RedisLimits } from './limits/redis-limits.js';

/** JWT_SECRET, or a random secret generated once and kept in the data directory. */
function jwtSecret(config: Config): { secret: string; source: string } {
  if (config.JWT_SECRET) return { secret: config.JWT_SECRET, source: 'JWT_SECRET' };
  const file = path.join(config.DATA_DIR, 'jwt-secret');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(config.DATA_DIR, { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' });
  }
  return { secret: fs.readFileSync(file, 'utf8').trim(), source: file };
}

const PRIVATE_DIR = 0o700;
/** What group and others may not have on anything in the data directory. */
const NOT_PRIVATE = 0o077;

/**
 * SQLite data private to this user whatever the umask: the umask becomes 0o077 (SQLite creates
 * its -wal, -shm and -journal files with the database file's mode), a missing directory is
 * created 0700, and anything already there that group or others can use is tightened, with a log
 * line per path. DATA_DIR is the server's own: it and everything in it, recursively. A
 * `sqlite:PATH` may sit in a directory shared with other files, so there only a directory this
 * creates and the database file and its companions are touched. PostgreSQL: nothing here.
 */
function makeDataPrivate(config: Config, logger: pino.Logger): void {
  const target = storageTarget(config);
  if (target.kind !== 'sqlite' || target.file === '' || target.file === ':memory:') return;
  process.umask(NOT_PRIVATE);
  const dir = path.resolve(path.dirname(target.file));
  const dataDir = path.resolve(config.DATA_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  if (dir === dataDir) {
    tighten(dataDir, logger, true);
    return;
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    tighten(path.resolve(target.file + suffix), logger, false);
  }
}

/** Takes group and other permissions off `file` (and, with `recursive`, off what a directory holds). */
function tighten(file: string, logger: pino.Logger, recursive: boolean): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return; // not there (yet): created private under the umask
  }
  if (stat.isSymbolicLink()) return; // chmod would follow it out of the directory
  const mode = stat.mode & 0o7777;
  if ((mode & NOT_PRIVATE) !== 0) {
    const tightened = mode & ~NOT_PRIVATE;
    try {
      fs.chmodSync(file, tightened);
      logger.warn(
        { path: file, mode: octal(mode), now: octal(tightened) },
        'data directory: permissions tightened to this user only',
      );
    } catch (error) {
      logger.error(
        { path: file, mode: octal(mode), err: error },
        'data directory: cannot make this path private to this user',
      );
    }
  }
  if (!recursive || !stat.isDirectory()) return;
  let entries: string[];
  try {
    entries = fs.readdirSync(file);
  } catch (error) {
    logger.error({ path: file, err: error }, 'data directory: cannot list this directory');
    return;
  }
  for (const entry of entries) tighten(path.join(file, entry), logger, true);
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

async function openStore(config: Config, logger: pino.Logger): Promise<Store> {
  const target = storageTarget(config);
  if (target.kind === 'postgres')
    return openPostgresStore({ url: target.url, poolSize: config.DATABASE_POOL_SIZE });
  // Fault tests only (NODE_ENV=test): a database that cannot grow beyond this many pages stands
  // in for a full disk (test/faults/disk-full.test.ts).
  const maxPageCount =
    config.NODE_ENV === 'test' ? Number(process.env.TEST_SQLITE_MAX_PAGE_COUNT) || 0 : 0;
  return config.SQLITE_THREAD
    ? openWorkerSqliteStore({
        file: target.file,
        log: logger,
        maxPageCount,
        cacheMib: config.SQLITE_CACHE_MIB,
      })
    : openSqliteStore({
        file: target.file,
        backgroundCheckpoints: true,
        log: logger,
        maxPageCount,
        cacheMib: config.SQLITE_CACHE_MIB,
      });
}

/** Redis when REDIS_URL is set (several nodes), else one node in memory. */
async function openBus(
  config: Config,
  logger: pino.Logger,
): Promise<{
  bus: Bus;
  presence: Presence;
  limits: Limits;
  sharedRateLimits?: AppDeps['sharedRateLimits'];
}> {
  if (!config.REDIS_URL)
    return { bus: new MemoryBus(), presence: new LocalPresence(), limits: new MemoryLimits() };
  const bus = await openRedisBus({ url: config.REDIS_URL, logger });
  // Presence, the limits and the HTTP rate limits share the bus' publisher connection.
  return {
    bus,
    presence: new RedisPresence(bus.client, { nodeId: bus.nodeId, logger }),
    limits: new RedisLimits(bus.client, {
      leaseFraction: config.RATE_SHARED_LEASE_PERCENT / 100,
      logger,
    }),
    sharedRateLimits: { redis: bus.client, nameSpace: 'chat:rate:' },
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino(loggerOptions(config.LOG_LEVEL));
  let store: Store;
  let bus: Bus;
  let presence: Presence;
  let limits: Limits;
  let sharedRateLimits: AppDeps['sharedRateLimits'];
  try {
    makeDataPrivate(config, logger);
    store = await openStore(config, logger);
    ({ bus, presence, limits, sharedRateLimits } = await openBus(config, logger));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const secret = jwtSecret(config);
  const app = await buildApp({
    config,
    store,
    bus,
    presence,
    limits,
    sharedRateLimits,
    logger,
    jwtSecret: secret.secret,
  });
  await app.listen({ port: config.PORT, host: config.HOST, backlog: config.LISTEN_BACKLOG });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const shown = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  logger.info(
    `chat listening on http://${shown}:${port} storage=${store.description} bus=${bus.description} jwt-secret=${secret.source === 'JWT_SECRET' ? 'JWT_SECRET' : `generated (${secret.source})`}`,
  );

  // The first SIGTERM/SIGINT drains (SHUTDOWN_DRAIN_MS: /readyz 503, everything else still
  // served, so that a load balancer moves traffic away), then shuts down within
  // SHUTDOWN_TIMEOUT_MS, closing WebSockets over SHUTDOWN_CLOSE_SPREAD_MS. Another signal during
  // the drain skips the rest of it; one after the drain closes the remaining WebSockets at once.
  let stopping = false;
  let endDrain: (() => void) | undefined;
  const stop = async (signal: string) => {
    if (stopping) {
      if (endDrain) {
        logger.info(`${signal} again: skipping the rest of the drain`);
        endDrain();
      } else {
        logger.info(`${signal} again: closing the remaining WebSockets at once`);
        app.gateway.hurry();
      }
      return;
    }
    stopping = true;
    app.drain();
    if (config.SHUTDOWN_DRAIN_MS > 0) {
      logger.info(`${signal}: draining for ${config.SHUTDOWN_DRAIN_MS} ms (/readyz answers 503)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, config.SHUTDOWN_DRAIN_MS);
        function done() {
          clearTimeout(timer);
          endDrain = undefined;
          resolve();
        }
        endDrain = done;
      });
    }
    logger.info(`${signal}: shutting down`);
    // The time limit starts after the drain: it bounds the shutdown itself, spread included.
    const timer = setTimeout(() => {
      logger.error('shutdown timed out');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    await app.close();
    await presence.close(); // before the bus: it uses the bus' connection
    await limits.close(); // the same
    await bus.close();
    await store.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
