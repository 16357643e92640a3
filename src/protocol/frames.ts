// Every WebSocket frame, as TypeBox schemas: the client frames (validated on the way in) and the
// server frames (typed on the way out, see codec.ts). Both are discriminated unions keyed by
// `type`; validation, the TypeScript types, the encoder and /asyncapi.json all derive from them.
import Type, { type Static } from 'typebox';
import { FRAME_ERRORS, type FrameErrorKey } from '../errors.js';
import { ClientId, Message, MessageId } from './message.js';

// ---- Client to server ----

/** Send a direct message. `type` may be left out: the original three-field frame. */
export const SendFrame = Type.Object(
  {
    type: Type.Optional(Type.Literal('message')),
    sender: Type.Optional(
      Type.String({ description: 'Must equal the authenticated user when present' }),
    ),
    receiver: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'An existing username, any case',
    }),
    content: Type.String({ minLength: 1, description: '1 to 4000 characters (code points)' }),
    clientId: Type.Optional(ClientId),
  },
  { title: 'send', description: 'Send a direct message' },
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
export const ClientFrame = Type.Union([SendFrame, SyncFrame, PingFrame]);

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
export const ServerFrame = Type.Union([AckFrame, MessageFrame, SyncedFrame, PongFrame, ErrorFrame]);

export type SendFrame = Static<typeof SendFrame>;
export type SyncFrame = Static<typeof SyncFrame>;
export type PingFrame = Static<typeof PingFrame>;
export type ClientFrame = Static<typeof ClientFrame>;
export type AckFrame = Static<typeof AckFrame>;
export type MessageFrame = Static<typeof MessageFrame>;
export type SyncedFrame = Static<typeof SyncedFrame>;
export type ErrorFrame = Static<typeof ErrorFrame>;
export type ServerFrame = Static<typeof ServerFrame>;
export type ErrorCode = ErrorFrame['code'];
