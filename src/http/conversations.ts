// Conversation routes: create a group, list the caller's conversations, one conversation, its
// history, rename, add and remove members (or leave), change a member's role. Anything of a
// group asked by a non-member is 404: a group's existence is not revealed.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Conversations } from '../chat/conversations.js';
import { AppError } from '../errors.js';
import { ConversationId, Message, MessageId, Role } from '../protocol/message.js';
import type { RouteHook } from './app-types.js';
import { bearer, errors, NoContent } from './schemas.js';

export interface ConversationRoutesOptions {
  conversations: Conversations;
  authenticate: RouteHook;
  titleMax: number;
  maxMembers: number;
}

const Member = Type.Object({
  username: Type.String(),
  role: Role,
  deliveredUpTo: Type.String({ description: 'Newest message id delivered to this member' }),
  readUpTo: Type.String({ description: 'Newest message id this member has read' }),
});

const Conversation = Type.Object({
  id: ConversationId,
  kind: Type.Union([Type.Literal('direct'), Type.Literal('group')]),
  title: Type.Union([Type.String(), Type.Null()], {
    description: 'null for a direct conversation',
  }),
  createdAt: Type.String({ format: 'date-time' }),
  memberCount: Type.Integer(),
  members: Type.Array(Member, {
    description: 'Every member, or the first few (by join order) of a large group',
  }),
  lastMessage: Type.Union([Message, Type.Null()]),
  lastActivityId: Type.String({ description: 'Id of the newest event; the list is ordered by it' }),
  unreadCount: Type.Integer({ description: "Others' messages newer than the caller's read mark" }),
  role: Role,
});

const Id = Type.Object({ id: ConversationId });
const Username = Type.String({ minLength: 1, maxLength: 64, description: 'A username, any case' });

export const conversationRoutes: FastifyPluginAsyncTypebox<ConversationRoutesOptions> = async (
  app,
  o,
) => {
  app.addHook('preHandler', o.authenticate);
  const Members = Type.Array(Username, { maxItems: o.maxMembers });
  const Title = Type.String({
    minLength: 1,
    description: `1 to ${o.titleMax} characters, not only spaces`,
  });
  const title = (t: string): string => {
    if ([...t].length > o.titleMax || t.trim() === '')
      throw new AppError('invalid_request', `title must be 1 to ${o.titleMax} characters`);
    return t;
  };

  app.post(
    '/conversations',
    {
      schema: {
        operationId: 'createConversation',
        summary: 'Create a group; the caller is its admin',
        description:
          'Both fields are optional: a group without a title has `title: null` until renamed; without members it starts with the caller alone.',
        tags: ['conversations'],
        security: bearer,
        body: Type.Object({ title: Type.Optional(Title), members: Type.Optional(Members) }),
        response: { 201: Conversation, ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const t = request.body.title;
      const c = await o.conversations.create(
        request.auth.user.id,
        t === undefined ? null : title(t),
        request.body.members ?? [],
      );
      return reply.code(201).send(c);
    },
  );

  app.get(
    '/conversations',
    {
      schema: {
        operationId: 'listConversations',
        summary: "The caller's conversations, most recent activity first",
        description:
          'Page with `before` = the `lastActivityId` of the last conversation of a page; `hasMore` says whether older ones exist.',
        tags: ['conversations'],
        security: bearer,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
          before: Type.Optional(MessageId),
        }),
        response: {
          200: Type.Object({ conversations: Type.Array(Conversation), hasMore: Type.Boolean() }),
          ...errors(400, 401),
        },
      },
    },
    async (request) =>
      o.conversations.list(request.auth.user.id, request.query.before, request.query.limit ?? 20),
  );

  app.get(
    '/conversations/:id',
    {
      schema: {
        operationId: 'getConversation',
        summary: 'One conversation of the caller',
        tags: ['conversations'],
        security: bearer,
        params: Id,
        response: { 200: Conversation, ...errors(400, 401, 404) },
      },
    },
    async (request) => o.conversations.one(request.auth.user.id, request.params.id),
  );

  app.get(
    '/conversations/:id/messages',
    {
      schema: {
        operationId: 'listConversationMessages',
        summary:
          'History of a conversation: the newest `limit` messages before `before`, oldest first',
        description:
          'Pages like /messages. A member added to a group sees its messages from when they joined; deleted messages are tombstones without content.',
        tags: ['conversations'],
        security: bearer,
        params: Id,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
          before: Type.Optional(MessageId),
        }),
        response: {
          200: Type.Object({ messages: Type.Array(Message), hasMore: Type.Boolean() }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) =>
      o.conversations.messages(
        request.auth.user.id,
        request.params.id,
        request.query.before,
        request.query.limit ?? 50,
      ),
  );

  app.patch(
    '/conversations/:id',
    {
      schema: {
        operationId: 'renameConversation',
        summary: 'Rename a group (admins)',
        tags: ['conversations'],
        security: bearer,
        params: Id,
        body: Type.Object({ title: Title }),
        response: { 200: Conversation, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) =>
      o.conversations.rename(request.auth.user.id, request.params.id, title(request.body.title)),
  );

  app.post(
    '/conversations/:id/members',
    {
      schema: {
        operationId: 'addConversationMembers',
        summary: 'Add members to a group (admins)',
        tags: ['conversations'],
        security: bearer,
        params: Id,
        body: Type.Object({
          members: Type.Array(Username, { minItems: 1, maxItems: o.maxMembers }),
        }),
        response: { 200: Conversation, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      o.conversations.addMembers(request.auth.user.id, request.params.id, request.body.members),
  );

  app.patch(
    '/conversations/:id/members/:username',
    {
      schema: {
        operationId: 'setMemberRole',
        summary: "Change a member's role (admins): promote to admin or step back to member",
        tags: ['conversations'],
        security: bearer,
        params: Type.Object({ id: ConversationId, username: Username }),
        body: Type.Object({ role: Role }),
        response: { 200: Conversation, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      o.conversations.setRole(
        request.auth.user.id,
        request.params.id,
        request.params.username,
        request.body.role,
      ),
  );

  app.delete(
    '/conversations/:id/members/:username',
    {
      schema: {
        operationId: 'removeConversationMember',
        summary: 'Remove a member (admins), or leave (oneself)',
        description:
          'The last admin cannot leave while others remain: promote someone first (409).',
        tags: ['conversations'],
        security: bearer,
        params: Type.Object({ id: ConversationId, username: Username }),
        response: { 204: NoContent, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await o.conversations.removeMember(
        request.auth.user.id,
        request.params.id,
        request.params.username,
      );
      return reply.code(204).send(null);
    },
  );
};
