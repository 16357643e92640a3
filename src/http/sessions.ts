// Session routes: list one's sessions, revoke one.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Accounts } from '../auth/accounts.js';
import type { RouteHook } from './app-types.js';
import { bearer, errors, NoContent } from './schemas.js';

export interface SessionRoutesOptions {
  accounts: Accounts;
  authenticate: RouteHook;
}

const SessionView = Type.Object({
  id: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean({ description: 'Whether this is the session of the calling token' }),
});

export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (app, o) => {
  app.addHook('preHandler', o.authenticate);

  app.get(
    '/sessions',
    {
      schema: {
        operationId: 'listSessions',
        summary: "The caller's live sessions, newest first",
        tags: ['sessions'],
        security: bearer,
        response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...errors(401) },
      },
    },
    async (request) => ({ sessions: await o.accounts.sessions(request.auth) }),
  );

  app.delete(
    '/sessions/:id',
    {
      schema: {
        operationId: 'revokeSession',
        summary: 'Revoke a session: its tokens stop working and its WebSockets close (4001)',
        tags: ['sessions'],
        security: bearer,
        // No length limit: any id that is not one of the caller's live sessions is a 404.
        params: Type.Object({
          id: Type.String({ description: 'A session id from GET /sessions' }),
        }),
        response: { 204: NoContent, ...errors(401, 404) },
      },
    },
    async (request, reply) => {
      await o.accounts.revokeSession(request.auth, request.params.id, request.log);
      return reply.code(204).send(null);
    },
  );
};
