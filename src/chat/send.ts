// Sending a direct message: check the frame against the caller, take a token from the caller's
// bucket, hand the message to the group-commit writer, ack once it is durably stored, then fan it
// out on the bus to every connection of sender and receiver but the sending one.
import type { Bus } from '../bus/bus.js';
import { TokenBuckets } from '../limits/token-bucket.js';
import type { RateBuckets } from '../limits/limits.js';
import { encodeFrame } from '../protocol/codec.js';
import type { SendFrame } from '../protocol/frames.js';
import type { Message } from '../protocol/message.js';
import type { Caller, ErrorLog } from './caller.js';
import type { MessageWriter } from './message-writer.js';

export interface SendDeps {
  writer: MessageWriter;
  bus: Bus;
  /** Messages per account per second, sustained. */
  messagesPerSecond: number;
  /** Messages per account at once. */
  messagesBurst: number;
  /** Where tokens come from (shared by the nodes with Redis); else this node's own buckets. */
  buckets?: RateBuckets;
  log: ErrorLog;
  /** Called once per message stored (not for duplicates), for metrics. */
  onStored?: () => void;
}

export class SendMessage {
  private readonly buckets: RateBuckets;

  constructor(private readonly d: SendDeps) {
    this.buckets = d.buckets ?? new TokenBuckets(d.messagesPerSecond, d.messagesBurst);
  }

  /** Forgets rate-limit state that no longer limits anyone; call now and then. */
  sweep(): void {
    this.buckets.sweep();
  }

  /**
   * Refusals are answered at once; an ack waits for the commit. Acks reach one caller in the
   * order its frames came, since the writer resolves in append order.
   */
  handle(caller: Caller, frame: SendFrame): void {
    const { clientId } = frame;
    if (frame.sender !== undefined && frame.sender.toLowerCase() !== caller.username.toLowerCase())
      return caller.reply({
        type: 'error',
        code: 'sender_mismatch',
        message: 'sender must be the authenticated user',
        clientId,
      });
    if (!this.buckets.take(caller.userId))
      return caller.reply({
        type: 'error',
        code: 'rate_limited',
        message: 'Too many messages; slow down and retry',
        clientId,
      });
    this.d.writer
      .append({
        senderId: caller.userId,
        receiver: frame.receiver,
        content: frame.content,
        clientId,
      })
      .then(
        (result) => {
          switch (result.kind) {
            case 'unknown_receiver':
              return caller.reply({
                type: 'error',
                code: 'unknown_receiver',
                message: `No user named ${frame.receiver}`,
                clientId,
              });
            case 'duplicate':
              return caller.reply(ack(result.message, clientId));
            case 'stored':
              caller.reply(ack(result.message, clientId));
              this.d.onStored?.();
              void this.d.bus.publish({
                type: 'deliver',
                userIds: result.recipients,
                messageId: result.message.id,
                frame: encodeFrame({ type: 'message', ...result.message }),
                exceptConnectionId: caller.connectionId,
              });
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

function ack(message: Message, clientId: string | undefined) {
  return { type: 'ack', clientId, id: message.id, createdAt: message.createdAt } as const;
}
