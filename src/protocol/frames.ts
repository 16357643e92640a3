// Every WebSocket frame, as TypeBox schemas: the client frames (validated on the way in) and the
// server frames (typed on the way out, see codec.ts). Both are discriminated unions keyed by
// `type`; validation, the TypeScript types, the encoder and /asyncapi.json all derive from them.
import Type, { type Static } from 'typebox';
import { FRAME_ERRORS, type FrameErrorKey } from '../errors.js';
import {
  ClientId,
  ConversationEvent,
  ConversationId,
  DeleteEvent,
  EditEvent,
  Message,
  MessageId,
} from './message.js';

const Content = Type.String({ minLength: 1, description: '1 to 4000 characters (code points)' });
const Username = Type.String({ minLength: 1, maxLength: 64, description: 'A username, any case' });
/** Names a conversation: its id, or for a direct one the other user. */
const Target = {
  conversationId: Type.Optional(ConversationId),
  with: Type.Optional(Username),
};

// ---- Client to server ----

/**
 * Send a message: to a user (`receiver`, the original three-field frame, where `type` may be left
 * out) or to a conversation (`conversationId`); exactly one of the two.
 */
export const SendFrame = Type.Object(
  {
    type: Type.Optional(Type.Literal('message')),
    sender: Type.Optional(
      Type.String({ description: 'Must equal the authenticated user when present' }),
    ),
    receiver: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'An existing username, any case (a direct message)',
      }),
    ),
    conversationId: Type.Optional(ConversationId),
    content: Content,
    clientId: Type.Optional(ClientId),
  },
  {
    title: 'send',
    description: 'Send a message to a user (`receiver`) or a conversation (`conversationId`)',
  },
);

/** Mark a conversation read up to a message id. */
export const ReadFrame = Type.Object(
  { type: Type.Literal('read'), ...Target, upTo: MessageId, clientId: Type.Optional(ClientId) },
  {
    title: 'read',
    description:
      "Moves the caller's read watermark of a conversation (`conversationId` or `with`) forward to `upTo`",
  },
);

/** The caller is typing in a conversation. */
export const TypingFrame = Type.Object(
  { type: Type.Literal('typing'), ...Target, clientId: Type.Optional(ClientId) },
  {
    title: 'typing',
    description:
      'Relayed to the other members, never stored; repeat every few seconds while typing',
  },
);

/** Edit one's own message. */
export const EditFrame = Type.Object(
  {
    type: Type.Literal('edit'),
    id: MessageId,
    content: Content,
    clientId: Type.Optional(ClientId),
  },
  { title: 'edit', description: "Replace the content of one of the caller's messages" },
);

/** Delete one's own message. */
export const DeleteFrame = Type.Object(
  { type: Type.Literal('delete'), id: MessageId, clientId: Type.Optional(ClientId) },
  { title: 'delete', description: "Delete one of the caller's messages, leaving a tombstone" },
);

/** Replay the caller's stream after a message id. */
export const SyncFrame = Type.Object(
  {
    type: Type.Literal('sync'),
    after: Type.Optional(
      Type.Union([MessageId, Type.Null()], { description: 'Omit or null for the whole stream' }),
    ),
    clientId: Type.Optional(
      Type.String({ description: 'Echoed in an error frame about this sync' }),
    ),
  },
  { title: 'sync', description: 'Replay every message of the stream after `after`, then `synced`' },
);

/** Application-level keep-alive for clients that cannot send ping frames. */
export const PingFrame = Type.Object(
  { type: Type.Literal('ping') },
  { title: 'ping', description: 'Answered with `pong`' },
);

/** Every frame a client may send. A frame without `type` is a `message`. */
export const ClientFrame = Type.Union([
  SendFrame,
  SyncFrame,
  PingFrame,
  ReadFrame,
  TypingFrame,
  EditFrame,
  DeleteFrame,
]);

// ---- Server to client ----

export const AckFrame = Type.Object(
  {
    type: Type.Literal('ack'),
    clientId: Type.Optional(Type.String()),
    id: MessageId,
    createdAt: Type.String({ format: 'date-time' }),
  },
  { title: 'ack', description: 'The message is durably stored' },
);

export const MessageFrame = Type.Object(
  { type: Type.Literal('message'), ...Message.properties },
  { title: 'message', description: 'A message to or from the user (live or replayed)' },
);

export const EditedFrame = Type.Object(
  { type: Type.Literal('edit'), ...EditEvent.properties },
  {
    title: 'messageEdited',
    description: 'A message of the conversation was edited (`messageId`); `id` is the event id',
  },
);

export const DeletedFrame = Type.Object(
  { type: Type.Literal('delete'), ...DeleteEvent.properties },
  {
    title: 'messageDeleted',
    description: 'A message of the conversation was deleted (`messageId`); `id` is the event id',
  },
);

export const ConversationFrame = Type.Object(
  { type: Type.Literal('conversation'), ...ConversationEvent.properties },
  {
    title: 'conversation',
    description: 'A group was created, renamed, or its members or their roles changed',
  },
);

export const ReceiptFrame = Type.Object(
  {
    type: Type.Literal('receipt'),
    conversationId: ConversationId,
    user: Type.String({ description: 'Whose watermark moved' }),
    kind: Type.Union([Type.Literal('delivered'), Type.Literal('read')]),
    upTo: MessageId,
  },
  {
    title: 'receipt',
    description: "A member's delivered or read watermark moved forward to `upTo`",
  },
);

export const UserTypingFrame = Type.Object(
  {
    type: Type.Literal('typing'),
    conversationId: ConversationId,
    user: Type.String(),
    expiresInMs: Type.Integer({ description: 'Show the indicator this long unless repeated' }),
  },
  { title: 'userTyping', description: 'A member is typing' },
);

export const PresenceFrame = Type.Object(
  {
    type: Type.Literal('presence'),
    user: Type.String(),
    online: Type.Boolean(),
    lastSeen: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When the user was last online; null while online or when hidden',
    }),
  },
  {
    title: 'presence',
    description: 'A user who shares a conversation with the caller came online or went offline',
  },
);

export const SyncedFrame = Type.Object(
  {
    type: Type.Literal('synced'),
    lastId: Type.Union([MessageId, Type.Null()], {
      description: 'Newest id sent; the next cursor',
    }),
  },
  { title: 'synced', description: 'The replay is complete; live messages follow' },
);

export const PongFrame = Type.Object(
  { type: Type.Literal('pong') },
  { title: 'pong', description: 'The answer to `ping`' },
);

/** The error codes a frame can carry: the catalogue's entries marked `frame` (errors.ts). */
export const ErrorFrame = Type.Object(
  {
    type: Type.Literal('error'),
    code: Type.Unsafe<FrameErrorKey>(Type.Union(FRAME_ERRORS.map((key) => Type.Literal(key)))),
    message: Type.String(),
    clientId: Type.Optional(Type.String()),
  },
  { title: 'error', description: 'The frame was refused; the connection stays open' },
);

/** Every frame the server sends. */
export const ServerFrame = Type.Union([
  AckFrame,
  MessageFrame,
  EditedFrame,
  DeletedFrame,
  ConversationFrame,
  ReceiptFrame,
  UserTypingFrame,
  PresenceFrame,
  SyncedFrame,
  PongFrame,
  ErrorFrame,
]);

/** The frames a stream replays, in the shape GET /sync returns them too. */
export const StreamFrame = Type.Union([MessageFrame, EditedFrame, DeletedFrame, ConversationFrame]);

export type SendFrame = Static<typeof SendFrame>;
export type ReadFrame = Static<typeof ReadFrame>;
export type TypingFrame = Static<typeof TypingFrame>;
export type EditFrame = Static<typeof EditFrame>;
export type DeleteFrame = Static<typeof DeleteFrame>;
export type SyncFrame = Static<typeof SyncFrame>;
export type PingFrame = Static<typeof PingFrame>;
export type ClientFrame = Static<typeof ClientFrame>;
export type AckFrame = Static<typeof AckFrame>;
export type MessageFrame = Static<typeof MessageFrame>;
export type SyncedFrame = Static<typeof SyncedFrame>;
export type ErrorFrame = Static<typeof ErrorFrame>;
export type ServerFrame = Static<typeof ServerFrame>;
export type ErrorCode = ErrorFrame['code'];
