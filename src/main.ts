// Composition root: config -> logger -> store -> bus -> buildApp -> listen -> signals.
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

/** JWT_SECRET, or a random secret generated once and kept in the data directory. */
function jwtSecret(config: Config): { secret: string; source: string } {
  if (config.JWT_SECRET) return { secret: config.JWT_SECRET, source: 'JWT_SECRET' };
  const file = path.join(config.DATA_DIR, 'jwt-secret');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(config.DATA_DIR, { recursive: true });
    fs.writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' });
  }
  return { secret: fs.readFileSync(file, 'utf8').trim(), source: file };
}

async function openStore(config: Config): Promise<Store> {
  const target = storageTarget(config);
  if (target.kind === 'postgres')
    return openPostgresStore({ url: target.url, poolSize: config.DATABASE_POOL_SIZE });
  return config.SQLITE_THREAD
    ? openWorkerSqliteStore({ file: target.file })
    : openSqliteStore({ file: target.file, backgroundCheckpoints: true });
}

/** Redis when REDIS_URL is set (several nodes), else one node in memory. */
async function openBus(
  config: Config,
  logger: pino.Logger,
): Promise<{ bus: Bus; presence: Presence; sharedRateLimits?: AppDeps['sharedRateLimits'] }> {
  if (!config.REDIS_URL) return { bus: new MemoryBus(), presence: new LocalPresence() };
  const bus = await openRedisBus({ url: config.REDIS_URL, logger });
  // Presence and the HTTP rate limits share the bus' publisher connection.
  return {
    bus,
    presence: new RedisPresence(bus.client, { nodeId: bus.nodeId, logger }),
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
  let sharedRateLimits: AppDeps['sharedRateLimits'];
  try {
    store = await openStore(config);
    ({ bus, presence, sharedRateLimits } = await openBus(config, logger));
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
    sharedRateLimits,
    logger,
    jwtSecret: secret.secret,
  });
  await app.listen({ port: config.PORT, host: config.HOST });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const shown = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  logger.info(
    `chat listening on http://${shown}:${port} storage=${store.description} bus=${bus.description} jwt-secret=${secret.source === 'JWT_SECRET' ? 'JWT_SECRET' : `generated (${secret.source})`}`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: shutting down`);
    const timer = setTimeout(() => {
      logger.error('shutdown timed out');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    await app.close();
    await presence.close(); // before the bus: it uses the bus' connection
    await bus.close();
    await store.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
