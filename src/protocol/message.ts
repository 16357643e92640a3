// The message as the wire shows it, wherever it appears: history and sync over HTTP, message
// frames on the WebSocket. Defined once here; http/ and the frames build on it.
import Type, { type Static } from 'typebox';

/** Message ids are decimal strings of one strictly increasing sequence. */
export const MESSAGE_ID_PATTERN = '^[0-9]{1,16}$';
export const MESSAGE_ID = new RegExp(MESSAGE_ID_PATTERN);

export const MessageId = Type.String({
  pattern: MESSAGE_ID_PATTERN,
  description: 'A message id: decimal string of a strictly increasing sequence',
});

export const ClientId = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'Echoed in the ack; makes retries safe',
});

/** Most code points in a message's content. */
export const CONTENT_MAX = 4000;
/** Largest WebSocket frame and HTTP body, in bytes. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const Message = Type.Object({
  id: MessageId,
  sender: Type.String({ description: 'Username of the sender, as registered' }),
  receiver: Type.String({ description: 'Username of the receiver, as registered' }),
  content: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

export type Message = Static<typeof Message>;
