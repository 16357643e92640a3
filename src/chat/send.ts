// Writing to the stream from the WebSocket: sending a message (to a user or a conversation),
// editing and deleting one's own. Each checks the frame against the caller, takes a token from
// the caller's bucket, goes through the group-commit writer, is acked once durably stored, then
// fans out on the bus to every member's connections but the sending one.
import type { Bus } from '../bus/bus.js';
import type { FrameErrorKey } from '../errors.js';
import { TokenBuckets } from '../limits/token-bucket.js';
import type { RateBuckets } from '../limits/limits.js';
import { encodeFrame } from '../protocol/codec.js';
import type { DeleteFrame, EditFrame, SendFrame } from '../protocol/frames.js';
import type { StreamEvent } from '../protocol/message.js';
import type { AppendResult, NewEvent } from '../storage/store.js';
import type { Caller, ErrorLog } from './caller.js';
import type { MessageWriter } from './message-writer.js';

export interface SendDeps {
  writer: MessageWriter;
  bus: Bus;
  /** Messages (and edits, deletions) per account per second, sustained. */
  messagesPerSecond: number;
  /** Messages per account at once. */
  messagesBurst: number;
  /** Where tokens come from (shared by the nodes with Redis); else this node's own buckets. */
  buckets?: RateBuckets;
  log: ErrorLog;
  /** Called once per event stored (not for duplicates), for metrics. */
  onStored?: () => void;
}

/** What each refusal of the store says to the client. */
const REFUSALS: Record<
  Exclude<AppendResult['kind'], 'stored' | 'duplicate'>,
  [FrameErrorKey, string]
> = {
  unknown_receiver: ['unknown_receiver', 'No such user'],
  conversation_not_found: [
    'conversation_not_found',
    'No such conversation, or you are not a member of it',
  ],
  message_not_found: ['message_not_found', 'No such message'],
  not_message_sender: ['not_message_sender', 'Only the sender may edit or delete a message'],
};

export class SendMessage {
  private readonly buckets: RateBuckets;

  constructor(private readonly d: SendDeps) {
    this.buckets = d.buckets ?? new TokenBuckets(d.messagesPerSecond, d.messagesBurst);
  }

  /** Forgets rate-limit state that no longer limits anyone; call now and then. */
  sweep(): void {
    this.buckets.sweep();
  }

  /** A message to a user (`receiver`) or a conversation (`conversationId`). */
  handle(caller: Caller, frame: SendFrame): void {
    const { clientId } = frame;
    if ((frame.receiver === undefined) === (frame.conversationId === undefined))
      return caller.reply({
        type: 'error',
        code: 'invalid_message',
        message: 'A message names either `receiver` or `conversationId`',
        clientId,
      });
    if (frame.sender !== undefined && frame.sender.toLowerCase() !== caller.username.toLowerCase())
      return caller.reply({
        type: 'error',
        code: 'sender_mismatch',
        message: 'sender must be the authenticated user',
        clientId,
      });
    this.write(caller, clientId, {
      kind: 'message',
      senderId: caller.userId,
      receiver: frame.receiver,
      conversationId: frame.conversationId,
      content: frame.content,
      clientId,
    });
  }

  edit(caller: Caller, frame: EditFrame): void {
    this.write(caller, frame.clientId, {
      kind: 'edit',
      senderId: caller.userId,
      messageId: frame.id,
      content: frame.content,
      clientId: frame.clientId,
    });
  }

  delete(caller: Caller, frame: DeleteFrame): void {
    this.write(caller, frame.clientId, {
      kind: 'delete',
      senderId: caller.userId,
      messageId: frame.id,
      clientId: frame.clientId,
    });
  }

  /**
   * Refusals are answered at once; an ack waits for the commit. Acks reach one caller in the
   * order its frames came, since the writer resolves in append order.
   */
  private write(caller: Caller, clientId: string | undefined, event: NewEvent): void {
    if (!this.buckets.take(caller.userId))
      return caller.reply({
        type: 'error',
        code: 'rate_limited',
        message: 'Too many messages; slow down and retry',
        clientId,
      });
    this.d.writer.append(event).then(
      (result) => {
        switch (result.kind) {
          case 'duplicate':
            return caller.reply(ack(result.event, clientId));
          case 'stored':
            caller.reply(ack(result.event, clientId));
            this.d.onStored?.();
            void this.d.bus.publish({
              type: 'deliver',
              userIds: result.recipients,
              messageId: result.event.id,
              frame: encodeFrame(result.event),
              exceptConnectionId: caller.connectionId,
              ...(result.event.type === 'message'
                ? {
                    receipt: {
                      conversationId: result.event.conversationId,
                      senderId: caller.userId,
                    },
                  }
                : {}),
            });
            return;
          default: {
            const [code, message] = REFUSALS[result.kind];
            const text =
              result.kind === 'unknown_receiver' && event.kind === 'message'
                ? `No user named ${event.receiver}`
                : message;
            return caller.reply({ type: 'error', code, message: text, clientId });
          }
        }
      },
      (error: unknown) => {
        this.d.log.error({ err: error }, 'storing a message failed');
        caller.reply({
          type: 'error',
          code: 'internal_error',
          message: 'The message was not stored; retry with the same clientId',
          clientId,
        });
      },
    );
  }
}

function ack(event: StreamEvent, clientId: string | undefined) {
  return { type: 'ack', clientId, id: event.id, createdAt: event.createdAt } as const;
}
