// WebSocket frames: TypeBox schemas that validate what clients send and generate the AsyncAPI
// document (asyncapi.ts). Frames are a discriminated union keyed by `type`.
import Type, { type Static } from 'typebox';

const ClientId = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'Echoed in the ack; makes retries safe',
});
const MessageId = Type.String({ pattern: '^[0-9]{1,16}$', description: 'A message id' });

/** Client -> server: send a message. `type` may be left out (the original three-field frame). */
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

/** Client -> server: replay the caller's stream after a message id. */
export const SyncFrame = Type.Object(
  {
    type: Type.Literal('sync'),
    after: Type.Optional(
      Type.Union([MessageId, Type.Null()], { description: 'Omit or null for the whole stream' }),
    ),
  },
  { title: 'sync', description: 'Replay every message of the stream after `after`, then `synced`' },
);

/** Client -> server: application-level keep-alive for clients that cannot send ping frames. */
export const PingFrame = Type.Object({ type: Type.Literal('ping') }, { title: 'ping' });

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
  {
    type: Type.Literal('message'),
    id: MessageId,
    sender: Type.String(),
    receiver: Type.String(),
    content: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
  },
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

export const PongFrame = Type.Object({ type: Type.Literal('pong') }, { title: 'pong' });

export const ErrorFrame = Type.Object(
  {
    type: Type.Literal('error'),
    code: Type.Union([
      Type.Literal('invalid_json'),
      Type.Literal('invalid_message'),
      Type.Literal('unknown_receiver'),
      Type.Literal('sender_mismatch'),
      Type.Literal('rate_limited'),
      Type.Literal('internal_error'),
    ]),
    message: Type.String(),
    clientId: Type.Optional(Type.String()),
  },
  { title: 'error', description: 'The frame was refused; the connection stays open' },
);

export type SendFrame = Static<typeof SendFrame>;
export type SyncFrame = Static<typeof SyncFrame>;
export type ErrorCode = Static<typeof ErrorFrame>['code'];

export const CONTENT_MAX = 4000;
export const MAX_PAYLOAD_BYTES = 64 * 1024;
