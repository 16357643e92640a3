// buildApp(deps): the whole server (HTTP routes, WebSocket gateway, docs, metrics) wired to the
// given store, bus and logger. It never listens: main.ts and the tests do that.
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { allowedOrigins, type Config } from './config.js';
import { AppError } from './errors.js';
import type { Store } from './storage/store.js';
import type { Bus } from './bus/bus.js';
import type { Presence } from './bus/presence.js';
import type { Redis } from 'ioredis';
import { Accounts } from './auth/accounts.js';
import { Passwords } from './auth/passwords.js';
import { AccessTokens } from './auth/tokens.js';
import { FailureLimiter } from './auth/failure-limiter.js';
import { MessageWriter } from './chat/message-writer.js';
import { SendMessage } from './chat/send.js';
import { Sync } from './chat/sync.js';
import { Gateway } from './realtime/gateway.js';
import { authenticateWith } from './http/auth-hook.js';
import { bearerToken } from './auth/bearer.js';
import { validatorCompiler } from './http/validator.js';
import { accountRoutes } from './http/accounts.js';
import { userRoutes } from './http/users.js';
import { sessionRoutes } from './http/sessions.js';
import { messageRoutes } from './http/messages.js';
import { healthRoutes } from './http/health.js';
import { createMetrics } from './metrics.js';
import { asyncApiDocument } from './protocol/asyncapi.js';
import { MAX_PAYLOAD_BYTES } from './protocol/message.js';

export interface AppDeps {
  config: Config;
  store: Store;
  bus: Bus;
  /** Who is online across nodes; by default this node's connections only (LocalPresence). */
  presence?: Presence;
  /**
   * Where the HTTP rate limits count, so that every node of a deployment shares them: a Redis
   * connection and a key prefix. By default each node counts in its own memory.
   */
  sharedRateLimits?: { redis: Redis; nameSpace: string };
  logger: FastifyBaseLogger;
  /** The HS256 key; main.ts reads it from JWT_SECRET or the data directory. */
  jwtSecret: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The WebSocket gateway, for tests and shutdown. */
    gateway: Gateway;
  }
}

const PRUNE_INTERVAL_MS = 10 * 60_000;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, store, bus } = deps;
  const app = Fastify({
    loggerInstance: deps.logger,
    trustProxy: config.TRUST_PROXY,
    bodyLimit: MAX_PAYLOAD_BYTES,
    // Requests during shutdown get the catalogue's 503 from the onRequest hook below.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);

  const metrics = createMetrics();
  const tokens = new AccessTokens(deps.jwtSecret, config.ACCESS_TOKEN_TTL_SEC);
  const accounts = new Accounts({
    store,
    bus,
    passwords: new Passwords({
      memoryCostKiB: config.ARGON2_MEMORY_KIB,
      timeCost: config.ARGON2_TIME_COST,
    }),
    tokens,
    loginFailures: new FailureLimiter(
      config.RATE_LOGIN_FAILURES,
      config.RATE_LOGIN_FAILURE_WINDOW_SEC * 1000,
    ),
    refreshTtlSeconds: config.REFRESH_TOKEN_TTL_SEC,
    ticketTtlSeconds: config.WS_TICKET_TTL_SEC,
    log: app.log,
  });
  const writer = new MessageWriter(store, {
    onCommit: (size, seconds) => {
      metrics.commitBatch.observe(size);
      metrics.commitSeconds.observe(seconds);
    },
  });
  const send = new SendMessage({
    writer,
    bus,
    messagesPerSecond: config.RATE_MESSAGES_PER_SEC,
    messagesBurst: config.RATE_MESSAGES_BURST,
    log: app.log,
    onStored: () => metrics.messagesStored.inc(),
  });
  const sync = new Sync({ store, pageSize: config.SYNC_PAGE_SIZE, log: app.log });
  const origins = allowedOrigins(config);
  const gateway = new Gateway({
    server: app.server,
    accounts,
    bus,
    presence: deps.presence,
    send,
    sync,
    writer,
    logger: app.log,
    pingIntervalMs: config.WS_PING_INTERVAL_MS,
    sendQueueBytes: config.WS_SEND_QUEUE_BYTES,
    handshakesPerMinute: config.RATE_WS_HANDSHAKES_PER_MIN,
    // The client address as the HTTP limits see it: with TRUST_PROXY, the first X-Forwarded-For entry.
    clientAddress: (req) => {
      const forwarded = config.TRUST_PROXY ? req.headers['x-forwarded-for'] : undefined;
      const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
      return first || req.socket.remoteAddress || 'unknown';
    },
    allowedOrigins: origins,
    publicUrl: config.PUBLIC_URL,
    onConnectionsChanged: (n) => metrics.wsConnections.set(n),
  });
  app.decorate('gateway', gateway);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    await gateway.shutdown();
  });
  const pruner = setInterval(
    () => void store.prune().catch((err) => app.log.warn({ err }, 'prune failed')),
    PRUNE_INTERVAL_MS,
  );
  pruner.unref();
  app.addHook('onClose', async () => clearInterval(pruner));

  // A JSON parser that reads an empty body as "no body" (POST /logout with a JSON content type).
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new AppError('invalid_json', 'The body is not valid JSON'), undefined);
    }
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const e = toAppError(error);
    if (e.status >= 500) request.log.error({ err: error }, 'request failed');
    if (e.status === 401) reply.header('www-authenticate', 'Bearer');
    return reply.code(e.status).headers(e.headers).send(e.toBody());
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        new AppError(
          'not_found',
          `No route ${request.method} ${request.url.split('?')[0]}`,
        ).toBody(),
      ),
  );

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    if (closing && request.url !== '/readyz' && request.url !== '/healthz') {
      throw new AppError('unavailable', 'The server is shutting down');
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(cors, {
    origin: origins.length > 0 ? origins : false,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type'],
  });
  await app.register(rateLimit, {
    global: true,
    max: config.RATE_API_PER_MIN,
    timeWindow: 60_000,
    enableDraftSpec: true,
    // A shared store that fails lets requests through: Redis down must not take the API down.
    ...(deps.sharedRateLimits
      ? {
          redis: deps.sharedRateLimits.redis,
          nameSpace: deps.sharedRateLimits.nameSpace,
          skipOnError: true,
        }
      : {}),
    // Authenticated requests count per account, others per client address.
    keyGenerator: async (request) => {
      const token = bearerToken(request.headers.authorization);
      const claims = token === undefined ? undefined : await tokens.verify(token);
      return claims ? `user:${claims.userId}` : `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, context) =>
      new AppError(
        'rate_limited',
        `Rate limit exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`,
      ),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chat server',
        version: '0.1.0',
        description:
          'Accounts and history over HTTP; real-time messages over the WebSocket at /websocket (see /asyncapi.json).',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const authenticate = authenticateWith(accounts);
  await app.register(accountRoutes, {
    accounts,
    authenticate,
    registerPerMinute: config.RATE_REGISTER_PER_MIN,
    loginPerMinute: config.RATE_LOGIN_PER_MIN,
  });
  await app.register(userRoutes, {
    store,
    authenticate,
    isOnline: (id) => gateway.hub.isOnline(id),
  });
  await app.register(sessionRoutes, { accounts, authenticate });
  await app.register(messageRoutes, { store, sync, authenticate });
  await app.register(healthRoutes, {
    checks: { storage: () => store.ping(), bus: () => bus.ping() },
    isShuttingDown: () => closing,
    metrics: metrics.registry,
    metricsOpen: config.NODE_ENV === 'development',
    metricsToken: config.METRICS_TOKEN,
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/asyncapi.json', { schema: { hide: true } }, async () => asyncApiDocument());
  return app;
}

/** Maps anything thrown in a request to an entry of the error catalogue. */
function toAppError(error: FastifyError | AppError): AppError {
  if (error instanceof AppError) return error;
  if (error.validation) {
    const first = error.validation[0];
    const where = `${error.validationContext ?? 'request'}${first?.instancePath ?? ''}`;
    return new AppError('invalid_request', `${where}: ${first?.message ?? 'invalid'}`);
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the body as application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_request', error.message);
  }
  if (error.statusCode === 404) return new AppError('not_found');
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new AppError('invalid_request', error.message);
  }
  return new AppError('internal_error');
}
