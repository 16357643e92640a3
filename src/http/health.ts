// Liveness, readiness and Prometheus metrics.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Registry } from 'prom-client';
import { AppError } from '../errors.js';
import { bearerToken } from '../auth/bearer.js';
import { StorageUnavailableError } from '../storage/store.js';
import { errors } from './schemas.js';

export interface HealthRoutesOptions {
  /** Each check resolves when its dependency answers. */
  checks: Record<string, () => Promise<void>>;
  isShuttingDown: () => boolean;
  metrics: Registry;
  /** Who may read /metrics: open in development, else the token or a loopback address. */
  metricsOpen: boolean;
  metricsToken: string;
}

const Status = Type.Object({
  status: Type.String(),
  checks: Type.Optional(Type.Record(Type.String(), Type.String())),
  // A 503 is an error response, so it also carries the `{"error": {code, message}}` of every error.
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, o) => {
  const noLimit = { rateLimit: false } as const;
  /** Checks that failed at the last /readyz: a change either way is logged once. */
  const failing = new Set<string>();

  app.get(
    '/healthz',
    {
      config: noLimit,
      schema: {
        operationId: 'health',
        security: [],
        summary: 'Liveness',
        tags: ['operations'],
        response: { 200: Status, ...errors(400) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: noLimit,
      schema: {
        operationId: 'ready',
        security: [],
        summary: 'Readiness: storage reachable and taking writes, bus reachable, not shutting down',
        tags: ['operations'],
        response: { 200: Status, ...errors(400), 503: Status },
      },
    },
    async (_request, reply) => {
      const checks: Record<string, string> = {};
      let ready = !o.isShuttingDown();
      if (!ready) checks.server = 'shutting down';
      for (const [name, check] of Object.entries(o.checks)) {
        try {
          await check();
          checks[name] = 'ok';
          if (failing.delete(name)) app.log.info({ check: name }, `readiness: ${name} ok again`);
        } catch (error) {
          // Storage that answers but cannot take writes (full disk, data directory gone).
          checks[name] = error instanceof StorageUnavailableError ? 'failing' : 'unreachable';
          ready = false;
          if (!failing.has(name)) {
            failing.add(name);
            app.log.error(
              { check: name, err: error },
              `readiness: ${name} ${checks[name]}; /readyz answers 503`,
            );
          }
        }
      }
      if (ready) return reply.code(200).send({ status: 'ready', checks });
      const { error } = new AppError(
        'unavailable',
        checks.server
          ? 'Not ready: the server is shutting down'
          : 'Not ready: a dependency is unreachable or failing',
      ).toBody();
      return reply.code(503).send({ status: 'unavailable', checks, error });
    },
  );

  app.get(
    '/metrics',
    {
      config: noLimit,
      schema: {
        operationId: 'metrics',
        security: [],
        summary: 'Prometheus metrics (restricted outside development)',
        tags: ['operations'],
        response: { 200: Type.String(), ...errors(403) },
      },
    },
    async (request, reply) => {
      const token = bearerToken(request.headers.authorization);
      const allowed =
        o.metricsOpen ||
        (o.metricsToken !== '' && token === o.metricsToken) ||
        (o.metricsToken === '' && LOOPBACK.test(request.ip));
      if (!allowed) throw new AppError('forbidden', 'Metrics need the configured METRICS_TOKEN');
      return reply.type(o.metrics.contentType).send(await o.metrics.metrics());
    },
  );
};
