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

/** Conversation ids are decimal strings. */
export const ConversationId = Type.String({
  pattern: MESSAGE_ID_PATTERN,
  description: 'A conversation id (direct or group)',
});

const Time = Type.String({ format: 'date-time' });

export const Message = Type.Object({
  id: MessageId,
  conversationId: ConversationId,
  sender: Type.String({ description: 'Username of the sender, as registered' }),
  receiver: Type.Optional(
    Type.String({ description: 'The other user of a direct conversation; absent in a group' }),
  ),
  content: Type.Optional(Type.String({ description: 'Absent once the message is deleted' })),
  createdAt: Time,
  editedAt: Type.Optional(Type.String({ format: 'date-time', description: 'Set once edited' })),
  deletedAt: Type.Optional(
    Type.String({ format: 'date-time', description: 'Set once deleted: a tombstone' }),
  ),
});

export type Message = Static<typeof Message>;

/** What a change to a conversation did; one event of the stream each. */
export const ConversationAction = Type.Union([
  Type.Literal('created'),
  Type.Literal('renamed'),
  Type.Literal('members_added'),
  Type.Literal('member_removed'),
  Type.Literal('role_changed'),
]);
export type ConversationAction = Static<typeof ConversationAction>;

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('member')]);
export type Role = Static<typeof Role>;

// The events of a user's stream, each with an id of the one message sequence: what sync replays
// and what live frames carry. Frames of the same names add only their `type`.

export const EditEvent = Type.Object({
  id: MessageId,
  conversationId: ConversationId,
  messageId: MessageId,
  sender: Type.String(),
  content: Type.String(),
  createdAt: Time,
});
export const DeleteEvent = Type.Object({
  id: MessageId,
  conversationId: ConversationId,
  messageId: MessageId,
  sender: Type.String(),
  createdAt: Time,
});
export const ConversationEvent = Type.Object({
  id: MessageId,
  conversationId: ConversationId,
  action: ConversationAction,
  actor: Type.String({ description: 'Who made the change' }),
  title: Type.Optional(Type.String({ description: 'created, renamed: the title' })),
  members: Type.Optional(
    Type.Array(Type.String(), {
      description:
        'created, members_added: the members added; member_removed, role_changed: the member',
    }),
  ),
  role: Type.Optional(Role),
  createdAt: Time,
});
export type EditEvent = Static<typeof EditEvent>;
export type DeleteEvent = Static<typeof DeleteEvent>;
export type ConversationEvent = Static<typeof ConversationEvent>;

/** One event of a user's stream, as sync replays it and as a live frame carries it. */
export type StreamEvent =
  | ({ type: 'message' } & Message)
  | ({ type: 'edit' } & EditEvent)
  | ({ type: 'delete' } & DeleteEvent)
  | ({ type: 'conversation' } & ConversationEvent);
