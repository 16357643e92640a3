// User routes: who am I, look one up (with presence), search by prefix.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { AppError } from '../errors.js';
import type { Store } from '../storage/store.js';
import type { RouteHook } from './app-types.js';
import { bearer, errors, User, UserWithPresence } from './schemas.js';

export interface UserRoutesOptions {
  store: Store;
  authenticate: RouteHook;
  /** Whether a user has an open WebSocket. */
  isOnline: (userId: string) => Promise<boolean>;
}

export const userRoutes: FastifyPluginAsyncTypebox<UserRoutesOptions> = async (app, o) => {
  app.addHook('preHandler', o.authenticate);

  app.get(
    '/users/me',
    {
      schema: {
        operationId: 'getMe',
        summary: 'The authenticated user',
        tags: ['users'],
        security: bearer,
        response: { 200: User, ...errors(401) },
      },
    },
    async (request) => request.auth.user,
  );

  app.get(
    '/users/:username',
    {
      schema: {
        operationId: 'getUser',
        summary: 'Look up a user by name (any case)',
        tags: ['users'],
        security: bearer,
        // No length limit: any name that is not registered is a 404 (the contract's answer).
        params: Type.Object({ username: Type.String({ description: 'A username, any case' }) }),
        response: { 200: UserWithPresence, ...errors(401, 404) },
      },
    },
    async (request) => {
      const user = await o.store.findUserByName(request.params.username);
      if (!user) throw new AppError('user_not_found');
      // A block either way hides presence: the blocked user never sees the blocker online.
      const hidden =
        user.id !== request.auth.user.id &&
        (await o.store.blockedBetween(request.auth.user.id, [user.id])).size > 0;
      return {
        id: user.id,
        username: user.username,
        createdAt: user.createdAt,
        online: !hidden && (await o.isOnline(user.id)),
      };
    },
  );

  app.get(
    '/users',
    {
      schema: {
        operationId: 'searchUsers',
        summary: 'Search users by a case-insensitive username prefix',
        tags: ['users'],
        security: bearer,
        querystring: Type.Object({
          q: Type.String({ minLength: 1, maxLength: 32 }),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
        }),
        response: { 200: Type.Object({ users: Type.Array(User) }), ...errors(400, 401) },
      },
    },
    async (request) => ({
      users: await o.store.searchUsers(request.query.q, request.query.limit ?? 20),
    }),
  );
};
