// Blocking and privacy settings: block and unblock a user, list one's blocks, read and change
// one's settings (read receipts, last seen).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { AppError } from '../errors.js';
import type { Store } from '../storage/store.js';
import type { RouteHook } from './app-types.js';
import { bearer, errors, NoContent, User } from './schemas.js';

export interface BlockRoutesOptions {
  store: Store;
  authenticate: RouteHook;
}

const Settings = Type.Object({
  readReceipts: Type.Boolean({
    description: "Send read receipts, and see others' (default true)",
  }),
  showLastSeen: Type.Boolean({ description: 'Show when one was last online (default true)' }),
});

export const blockRoutes: FastifyPluginAsyncTypebox<BlockRoutesOptions> = async (app, o) => {
  app.addHook('preHandler', o.authenticate);
  const Params = Type.Object({ username: Type.String({ description: 'A username, any case' }) });

  const target = async (callerId: string, username: string) => {
    const user = await o.store.findUserByName(username);
    if (!user) throw new AppError('user_not_found');
    if (user.id === callerId) throw new AppError('invalid_request', 'You cannot block yourself');
    return user;
  };

  app.post(
    '/users/:username/block',
    {
      schema: {
        operationId: 'blockUser',
        summary:
          'Block a user: their direct messages, presence, typing and receipts stop reaching the caller',
        description:
          'Idempotent. The blocked user is not told: their direct messages are acked as usual but reach only their own stream (docs/protocol.md#blocking).',
        tags: ['users'],
        security: bearer,
        params: Params,
        response: { 204: NoContent, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const user = await target(request.auth.user.id, request.params.username);
      await o.store.block(request.auth.user.id, user.id);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/users/:username/block',
    {
      schema: {
        operationId: 'unblockUser',
        summary: 'Unblock a user (idempotent); messages sent during the block stay hidden',
        tags: ['users'],
        security: bearer,
        params: Params,
        response: { 204: NoContent, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const user = await target(request.auth.user.id, request.params.username);
      await o.store.unblock(request.auth.user.id, user.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/users/me/blocks',
    {
      schema: {
        operationId: 'listBlocks',
        summary: 'The users the caller blocks, oldest block first',
        tags: ['users'],
        security: bearer,
        response: { 200: Type.Object({ users: Type.Array(User) }), ...errors(401) },
      },
    },
    async (request) => ({ users: await o.store.listBlocks(request.auth.user.id) }),
  );

  app.get(
    '/users/me/settings',
    {
      schema: {
        operationId: 'getSettings',
        summary: "The caller's privacy settings",
        tags: ['users'],
        security: bearer,
        response: { 200: Settings, ...errors(401) },
      },
    },
    async (request) => o.store.getSettings(request.auth.user.id),
  );

  app.patch(
    '/users/me/settings',
    {
      schema: {
        operationId: 'updateSettings',
        summary: "Change the caller's privacy settings (the fields given)",
        tags: ['users'],
        security: bearer,
        body: Type.Partial(Settings),
        response: { 200: Settings, ...errors(400, 401) },
      },
    },
    async (request) => o.store.setSettings(request.auth.user.id, request.body),
  );
};
