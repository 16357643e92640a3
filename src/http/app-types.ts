// Types shared by the route plugins.
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A preHandler hook such as `authenticate`. */
export type RouteHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
