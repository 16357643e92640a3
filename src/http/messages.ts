// Message routes: the history of a direct conversation, and the caller's stream for sync.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { AppError } from '../errors.js';
import type { Sync } from '../chat/sync.js';
import type { Store } from '../storage/store.js';
import type { RouteHook } from './app-types.js';
import { StreamFrame } from '../protocol/frames.js';
import { MESSAGE_ID_PATTERN } from '../protocol/message.js';
import { bearer, errors, Message, MessageId } from './schemas.js';

export interface MessageRoutesOptions {
  store: Store;
  sync: Sync;
  authenticate: RouteHook;
}

export const messageRoutes: FastifyPluginAsyncTypebox<MessageRoutesOptions> = async (app, o) => {
  app.addHook('preHandler', o.authenticate);

  app.get(
    '/messages',
    {
      schema: {
        operationId: 'listMessages',
        summary: 'History with one user: the newest `limit` messages before `before`, oldest first',
        description:
          'Page backwards by passing the id of the first message of a page as `before`; `hasMore` says whether older messages exist.',
        tags: ['messages'],
        security: bearer,
        querystring: Type.Object({
          with: Type.String({
            minLength: 1,
            maxLength: 64,
            description: 'The other user (any case)',
          }),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
          before: Type.Optional(MessageId),
        }),
        response: {
          200: Type.Object({ messages: Type.Array(Message), hasMore: Type.Boolean() }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) => {
      const peer = await o.store.findUserByName(request.query.with);
      if (!peer) throw new AppError('user_not_found');
      return o.store.history(
        request.auth.user.id,
        peer.id,
        request.query.before,
        request.query.limit ?? 50,
      );
    },
  );

  app.get(
    '/sync',
    {
      schema: {
        operationId: 'sync',
        summary: "The caller's stream after a message id, oldest first (offline catch-up)",
        description:
          'Every message the caller sent or received with an id greater than `after`. Repeat with `after` = the last id until `hasMore` is false: the client is then caught up.',
        tags: ['messages'],
        security: bearer,
        querystring: Type.Object({
          after: Type.Optional(
            Type.String({
              pattern: MESSAGE_ID_PATTERN,
              description: 'A message id; omit to start from the beginning',
            }),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: {
          200: Type.Object({
            messages: Type.Array(StreamFrame, {
              description:
                'Every event of the stream in id order, each shaped like its WebSocket frame: messages (`type: "message"`), edits, deletions and changes to conversations',
            }),
            hasMore: Type.Boolean({ description: 'false: the client is caught up' }),
            lastId: Type.Union([Type.String(), Type.Null()], {
              description: 'The cursor for the next call: the last id returned, else `after`',
            }),
          }),
          ...errors(400, 401),
        },
      },
    },
    async (request) =>
      o.sync.page(request.auth.user.id, request.query.after, request.query.limit ?? 100),
  );
};
