// buildApp(deps): the whole server (HTTP routes, WebSocket gateway, docs, metrics) wired to the
// given store, bus and logger. It never listens: main.ts and the tests do that.
import http from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { allowedOrigins, type Config } from './config.js';
import { AppError } from './errors.js';
import { redactUrl } from './logger.js';
import type { Store } from './storage/store.js';
import type { Bus } from './bus/bus.js';
import type { Presence } from './bus/presence.js';
import type { Redis } from 'ioredis';
import { Accounts } from './auth/accounts.js';
import { Passwords } from './auth/passwords.js';
import { AccessTokens } from './auth/tokens.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { MessageWriter } from './chat/message-writer.js';
import type { Limits } from './limits/limits.js';
import { MemoryLimits } from './limits/memory-limits.js';
import { SendMessage } from './chat/send.js';
import { Sync } from './chat/sync.js';
import { Receipts } from './chat/receipts.js';
import { Typing } from './chat/typing.js';
import { Conversations } from './chat/conversations.js';
import { PresenceNotifier } from './chat/presence-notifier.js';
import { Gateway } from './realtime/gateway.js';
import { authenticateWith } from './http/auth-hook.js';
import { bearerToken } from './auth/bearer.js';
import { validatorCompiler } from './http/validator.js';
import { accountRoutes } from './http/accounts.js';
import { userRoutes } from './http/users.js';
import { sessionRoutes } from './http/sessions.js';
import { messageRoutes } from './http/messages.js';
import { conversationRoutes } from './http/conversations.js';
import { blockRoutes } from './http/blocks.js';
import { healthRoutes } from './http/health.js';
import { defaultWebRoot, webRoutes } from './http/web.js';
import { createMetrics } from './metrics.js';
import { asyncApiDocument } from './protocol/asyncapi.js';
import { MAX_PAYLOAD_BYTES } from './protocol/message.js';
import { malformedTextAt, NOT_WELL_FORMED, percentEscapesAreUtf8 } from './protocol/text.js';
import { isUtf8 } from 'node:buffer';

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
  /**
   * Where the WebSocket limits (handshakes per address, messages per account) and the login
   * throttle count: RedisLimits shares them across nodes. By default this node's memory.
   */
  limits?: Limits;
  logger: FastifyBaseLogger;
  /** The HS256 key; main.ts reads it from JWT_SECRET or the data directory. */
  jwtSecret: string;
  /** The browser client's build, served at `/`; by default web/dist of this checkout. */
  webRoot?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The WebSocket gateway, for tests and shutdown. */
    gateway: Gateway;
    /**
     * Starts the drain before a shutdown: /readyz answers 503 from now on and new WebSocket
     * handshakes are refused, while HTTP requests and open WebSockets are still served.
     */
    drain(): void;
  }
}

const PRUNE_INTERVAL_MS = 10 * 60_000;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, store, bus } = deps;
  const limits = deps.limits ?? new MemoryLimits();
  const app = Fastify({
    loggerInstance: deps.logger,
    trustProxy: config.TRUST_PROXY,
    bodyLimit: MAX_PAYLOAD_BYTES,
    // Requests during shutdown get the catalogue's 503 from the onRequest hook below.
    return503OnClosing: false,
    // Every error answer is in the catalogue's shape, whatever produced it: what Node answers by
    // itself (httpServer), what Fastify refuses before routing (a path that is not valid
    // percent-encoding, an over-long path parameter) and what Node's HTTP parser refuses before
    // any request exists (answerClientError).
    serverFactory: (handler, options) => httpServer(handler, options, deps.logger),
    frameworkErrors: (error, request, reply) => {
      const e = toAppError(error);
      request.log.info(
        { code: e.code, status: e.status, url: redactUrl(request.url) },
        'request refused before routing',
      );
      void sendError(reply, e);
    },
    clientErrorHandler: (error, socket) => answerClientError(error, socket, deps.logger),
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
    loginThrottle: new LoginThrottle(
      limits,
      {
        sourceFailures: config.RATE_LOGIN_SOURCE_FAILURES,
        accountFailures: config.RATE_LOGIN_ACCOUNT_FAILURES,
        delayMs: config.RATE_LOGIN_DELAY_SEC * 1000,
        maxDelayMs: config.RATE_LOGIN_MAX_DELAY_SEC * 1000,
        forgetMs: config.RATE_LOGIN_FAILURE_MEMORY_SEC * 1000,
        knownMs: config.RATE_LOGIN_KNOWN_SOURCE_SEC * 1000,
      },
      deps.jwtSecret,
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
    buckets: limits.buckets('messages', {
      ratePerSec: config.RATE_MESSAGES_PER_SEC,
      burst: config.RATE_MESSAGES_BURST,
    }),
    log: app.log,
    onStored: () => metrics.messagesStored.inc(),
    onOutcome: (outcome, code) => {
      metrics.messages.inc({ outcome, code: code ?? '' });
      if (outcome === 'duplicate') metrics.dedupHits.inc();
    },
  });
  const receipts = new Receipts({ store, bus, log: app.log, flushMs: config.RECEIPTS_FLUSH_MS });
  const sync = new Sync({
    store,
    pageSize: config.SYNC_PAGE_SIZE,
    log: app.log,
    onDelivered: (userId, conversationId, messageId, sender) =>
      receipts.delivered(userId, conversationId, messageId, { name: sender }),
    onSync: (via, events) => {
      metrics.syncRequests.inc({ via });
      metrics.syncEvents.inc({ via }, events);
    },
  });
  const typing = new Typing({
    store,
    bus,
    expiresInMs: config.TYPING_EXPIRES_MS,
    perSecond: config.RATE_TYPING_PER_SEC,
    burst: config.RATE_TYPING_BURST,
  });
  const conversations = new Conversations({
    store,
    bus,
    maxMembers: config.GROUP_MAX_MEMBERS,
    memberPreview: config.CONVERSATION_MEMBER_PREVIEW,
  });
  // The hub is built by the gateway; the notifier asks it who is online once it exists.
  let isOnline: (userId: string) => Promise<boolean> = async () => false;
  const notifier = new PresenceNotifier({
    store,
    bus,
    log: app.log,
    isOnline: (userId) => isOnline(userId),
    coalesceMs: config.PRESENCE_COALESCE_MS,
  });
  const origins = allowedOrigins(config);
  const gateway = new Gateway({
    server: app.server,
    accounts,
    bus,
    presence: deps.presence,
    send,
    sync,
    receipts,
    typing,
    hubHooks: {
      onDelivered: (userId, conversationId, messageId, senderId) =>
        receipts.delivered(userId, conversationId, messageId, { id: senderId }),
      onPresenceChange: (userId) => notifier.changed(userId),
      onDeliveryLag: (seconds) => metrics.deliveryLag.observe(seconds),
    },
    writer,
    logger: app.log,
    pingIntervalMs: config.WS_PING_INTERVAL_MS,
    closeSpreadMs: config.SHUTDOWN_CLOSE_SPREAD_MS,
    sendQueueBytes: config.WS_SEND_QUEUE_BYTES,
    handshakesPerMinute: config.RATE_WS_HANDSHAKES_PER_MIN,
    handshakeConcurrency: config.WS_HANDSHAKE_CONCURRENCY,
    handshakeBuckets: limits.buckets('ws-handshakes', {
      ratePerSec: config.RATE_WS_HANDSHAKES_PER_MIN / 60,
      burst: config.RATE_WS_HANDSHAKES_PER_MIN,
    }),
    refusedFramesPerMinute: config.RATE_WS_ERRORS_PER_MIN,
    refusalBuckets: limits.buckets('ws-refused-frames', {
      ratePerSec: config.RATE_WS_ERRORS_PER_MIN / 60,
      burst: config.RATE_WS_ERRORS_PER_MIN,
    }),
    // The client address as the HTTP limits see it: with TRUST_PROXY, the first X-Forwarded-For entry.
    clientAddress: (req) => {
      const forwarded = config.TRUST_PROXY ? req.headers['x-forwarded-for'] : undefined;
      const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
      return first || req.socket.remoteAddress || 'unknown';
    },
    allowedOrigins: origins,
    publicUrl: config.PUBLIC_URL,
    onConnectionsChanged: (n) => metrics.wsConnections.set(n),
    onErrorFrame: (code) => metrics.errorFrames.inc({ code }),
    onRateLimited: (limit) => metrics.rateLimited.inc({ limit }),
  });
  app.decorate('gateway', gateway);
  isOnline = (userId) => gateway.hub.isOnline(userId);
  let closing = false;
  let draining = false;
  app.decorate('drain', () => {
    draining = true;
    gateway.stopAccepting();
  });
  app.addHook('preClose', async () => {
    closing = true;
    await gateway.shutdown();
    notifier.close();
    await receipts.close();
  });
  const pruner = setInterval(
    () => void store.prune().catch((err) => app.log.warn({ err }, 'prune failed')),
    PRUNE_INTERVAL_MS,
  );
  pruner.unref();
  app.addHook('onClose', async () => clearInterval(pruner));

  // A JSON parser that reads an empty body as "no body" (POST /logout with a JSON content type),
  // and refuses text that is not well-formed: bytes that are not UTF-8 (decoding would turn them
  // into U+FFFD) and, when the text has a `\u` escape, strings holding a lone surrogate.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    // A compressed body read as JSON would be garbage at best: refuse any coding but identity.
    if (!identityCoded(req.headers['content-encoding'])) {
      return done(
        new AppError(
          'unsupported_media_type',
          'Content-Encoding is not supported: send the body uncompressed',
        ),
        undefined,
      );
    }
    const bytes = body as Buffer;
    if (bytes.length === 0) return done(null, undefined);
    if (!isUtf8(bytes)) return done(new AppError('invalid_request', 'The body is not UTF-8 text'));
    const text = bytes.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(new AppError('invalid_json', 'The body is not valid JSON'), undefined);
    }
    const at = text.includes('\\u') ? malformedTextAt(parsed) : undefined;
    if (at !== undefined)
      return done(new AppError('invalid_request', `body${at ? `/${at}` : ''} ${NOT_WELL_FORMED}`));
    done(null, parsed);
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const e = toAppError(error);
    if (e.status >= 500) request.log.error({ err: error }, 'request failed');
    if (e.status === 429) {
      const route = request.routeOptions.url ?? 'unknown';
      const limit = httpRefusals.has(e) ? httpLimitOf(route) : 'login_failures';
      metrics.rateLimited.inc({ limit });
      request.log.warn(
        { code: e.code, status: e.status, limit, route, retryAfter: e.headers['retry-after'] },
        'rate limited',
      );
    }
    return sendError(reply, e);
  });
  app.setNotFoundHandler((request, reply) => {
    const route = request.url.split('?')[0] ?? '';
    const shown = route.length > ECHOED_PATH_MAX ? `${route.slice(0, ECHOED_PATH_MAX)}...` : route;
    return reply
      .code(404)
      .send(new AppError('not_found', `No route ${request.method} ${shown}`).toBody());
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    // RFC 9112 3.2; Node's own check (requireHostHeader) would answer with an empty body.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new AppError('invalid_request', 'An HTTP/1.1 request needs a Host header');
    }
    if (closing && request.url !== '/readyz' && request.url !== '/healthz') {
      throw new AppError('unavailable', 'The server is shutting down');
    }
    // Query values are decoded leniently (a bad escape is kept or replaced): refuse them here.
    if (!percentEscapesAreUtf8(request.url))
      throw new AppError('invalid_request', 'The URL has percent-escapes that are not UTF-8 text');
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
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
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
    errorResponseBuilder: (_request, context) => {
      const e = new AppError(
        'rate_limited',
        `Rate limit exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`,
      );
      httpRefusals.add(e);
      return e;
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chat server',
        version: '0.1.0',
        description:
          'Accounts and history over HTTP; real-time messages over the WebSocket at /websocket (see /asyncapi.json).',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // Generators need a base URL: the configured public URL, else the server this document
      // was fetched from (a relative URL).
      servers: [{ url: config.PUBLIC_URL || '/' }],
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
    deviceCookie: {
      maxAgeSeconds: config.RATE_LOGIN_KNOWN_SOURCE_SEC,
      secure: config.PUBLIC_URL.startsWith('https:'),
    },
  });
  await app.register(userRoutes, {
    store,
    authenticate,
    isOnline: (id) => gateway.hub.isOnline(id),
  });
  await app.register(sessionRoutes, { accounts, authenticate });
  await app.register(messageRoutes, { store, sync, authenticate });
  await app.register(conversationRoutes, {
    conversations,
    authenticate,
    titleMax: config.GROUP_TITLE_MAX,
    maxMembers: config.GROUP_MAX_MEMBERS,
  });
  await app.register(blockRoutes, { store, authenticate });
  await app.register(healthRoutes, {
    checks: { storage: () => store.ping(), bus: () => bus.ping() },
    isShuttingDown: () => closing || draining,
    metrics: metrics.registry,
    metricsOpen: config.NODE_ENV === 'development',
    metricsToken: config.METRICS_TOKEN,
  });
  await app.register(webRoutes, {
    root: deps.webRoot ?? defaultWebRoot(),
    publicUrl: config.PUBLIC_URL,
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/asyncapi.json', { schema: { hide: true } }, async () => asyncApiDocument());
  return app;
}

/** The 429s of the HTTP rate limits (@fastify/rate-limit); the others are the login throttle's. */
const httpRefusals = new WeakSet<AppError>();

/** Which HTTP rate limit a route counts against (`chat_rate_limited_total{limit}`). */
function httpLimitOf(route: string): string {
  switch (route) {
    case '/register':
      return 'register';
    case '/login':
      return 'login_per_address';
    case '/token/refresh':
      return 'refresh';
    default:
      return 'api';
  }
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
    // Fastify's own messages for these two echo the URL, query string (and any token) included.
    case 'FST_ERR_BAD_URL':
      return new AppError('invalid_request', 'The path is not valid percent-encoding');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError('uri_too_long', 'A path segment is too long');
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

/** How much of an unknown path a 404 message echoes. */
const ECHOED_PATH_MAX = 100;

/** An error response: the catalogue's body, status and headers, and the headers of every response. */
function sendError(reply: FastifyReply, e: AppError): FastifyReply {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('cache-control', 'no-store');
  if (e.status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(e.status).headers(e.headers).send(e.toBody());
}

/** A Content-Encoding that leaves the body as it is: none, or only `identity`. */
function identityCoded(header: string | undefined): boolean {
  if (header === undefined) return true;
  return header
    .split(',')
    .every((coding) => ['', 'identity'].includes(coding.trim().toLowerCase()));
}

/**
 * The HTTP server as Fastify would create it, minus what Node does by itself outside the error
 * shape: 400 with an empty body to an HTTP/1.1 request without Host (the onRequest hook answers it
 * instead), 417 with an empty body to an `Expect` other than `100-continue` (ignored instead, as
 * RFC 9110 10.1.1 allows: the request is served), and a CONNECT closed unanswered (this is no
 * proxy: 404 not_found, like any other unknown route).
 */
function httpServer(
  handler: http.RequestListener,
  options: {
    keepAliveTimeout?: number;
    requestTimeout?: number;
    connectionTimeout?: number;
    maxRequestsPerSocket?: number | null;
  },
  log: FastifyBaseLogger,
): http.Server {
  const server = http.createServer({ requireHostHeader: false }, handler);
  server.on('checkExpectation', handler);
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    const e = new AppError('not_found', 'No route CONNECT');
    log.info({ code: e.code, status: e.status, method: 'CONNECT' }, 'request refused');
    socket.on('error', () => {});
    writeRawError(socket, e);
  });
  // What Fastify sets on a server it creates itself.
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
  if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout;
  server.setTimeout(options.connectionTimeout ?? 0);
  if (options.maxRequestsPerSocket) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
  return server;
}

/** How long a connection that got a raw error answer stays open for the client to read it. */
const CLIENT_ERROR_LINGER_MS = 1000;
/** Connections already answered: the parser reports its error again for every later chunk. */
const answered = new WeakSet<Socket>();

/** The catalogue's answer to an error of Node's HTTP parser (or its request timeout). */
function clientErrorOf(code: string | undefined): AppError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('headers_too_large');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new AppError('payload_too_large', 'The chunk extensions are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('request_timeout');
    case 'HPE_INVALID_METHOD':
      return new AppError('invalid_request', 'Unknown or malformed HTTP method');
    default:
      return new AppError('invalid_request', 'Malformed HTTP request');
  }
}

/**
 * A request Node's HTTP parser refused (unknown method, malformed request line or header, headers
 * over 16 KiB, a request that took too long): no request object exists, so the answer, in the
 * catalogue's shape, is written on the socket, which then closes. One log line, with no byte of
 * the request (the raw packet holds its headers, credentials included).
 */
function answerClientError(
  error: Error & { code?: string },
  socket: Socket,
  log: FastifyBaseLogger,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return;
  answered.add(socket);
  const e = clientErrorOf(error.code);
  const respond = () => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    log.info(
      {
        code: e.code,
        status: e.status,
        parserError: error.code,
        remoteAddress: socket.remoteAddress,
      },
      'malformed request refused',
    );
    writeRawError(socket, e);
  };
  const closeOnly = () => {
    log.info({ parserError: error.code }, 'malformed request: connection closed unanswered');
    socket.destroy();
  };
  // The response on this connection now, if any (Node's own field; `req` and `complete` are API).
  const pending = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
  if (!pending) return respond();
  if (!pending.req.complete) {
    // The broken bytes are this request's body: answer it, unless its response has begun.
    return pending.headersSent ? closeOnly() : respond();
  }
  // An earlier request, read in full, is still being answered: the error answer follows it, and
  // only if no other response is queued behind it.
  pending.once('finish', () => {
    const next = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
    if (next) closeOnly();
    else respond();
  });
}

/** An error answer written on a socket that no response object owns; the connection then closes. */
function writeRawError(socket: Socket, e: AppError): void {
  const body = JSON.stringify(e.toBody());
  const head = [
    `HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status] ?? 'Error'}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'x-content-type-options: nosniff',
    'cache-control: no-store',
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
}
