// Typing indicators: relayed to the conversation's other members' connections, never stored,
// limited per connection, and dropped first when a connection is backed up.
import type { Bus } from '../bus/bus.js';
import { TokenBuckets } from '../limits/token-bucket.js';
import { encodeFrame } from '../protocol/codec.js';
import type { TypingFrame } from '../protocol/frames.js';
import type { Store } from '../storage/store.js';
import type { Caller } from './caller.js';
import { callerConversation } from './conversations.js';

export interface TypingDeps {
  store: Store;
  bus: Bus;
  /** How long a client shows the indicator unless it is repeated. */
  expiresInMs: number;
  /** Typing frames per connection per second, and at once. */
  perSecond: number;
  burst: number;
}

export class Typing {
  private readonly buckets: TokenBuckets;

  constructor(private readonly d: TypingDeps) {
    this.buckets = new TokenBuckets(d.perSecond, d.burst);
  }

  sweep(): void {
    this.buckets.sweep();
  }

  /** Over the limit, a typing frame is dropped without an answer: the next one will do. */
  async handle(caller: Caller, frame: TypingFrame): Promise<void> {
    if (!this.buckets.take(caller.connectionId)) return;
    const found = await callerConversation(this.d.store, caller, frame);
    if (!found) return;
    const { conversationId, members } = found;
    const others = members.filter((id) => id !== caller.userId);
    if (others.length === 0) return;
    const blocked = await this.d.store.blockedBetween(caller.userId, others);
    const userIds = others.filter((id) => !blocked.has(id));
    if (userIds.length === 0) return;
    void this.d.bus.publish({
      type: 'signal',
      userIds,
      droppable: true,
      frame: encodeFrame({
        type: 'typing',
        conversationId,
        user: caller.username,
        expiresInMs: this.d.expiresInMs,
      }),
    });
  }
}
