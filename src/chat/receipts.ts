// Delivered and read receipts: watermarks per member and conversation (storage grows with
// members, not messages). Reads come from a `read` frame; deliveries from the hub (a live message
// reached a connection) and from replays, gathered and written together every `flushMs`.
import type { Bus } from '../bus/bus.js';
import { encodeFrame } from '../protocol/codec.js';
import type { ReadFrame } from '../protocol/frames.js';
import type { Store, Watermark } from '../storage/store.js';
import type { Caller, ErrorLog } from './caller.js';
import { callerConversation } from './conversations.js';

/** Delivered receipts announced per turn of the event loop in a flush. */
const ANNOUNCE_CHUNK = 64;

export interface ReceiptsDeps {
  store: Store;
  bus: Bus;
  log: ErrorLog;
  /** How long deliveries gather before their watermarks are written (and receipts sent). */
  flushMs: number;
}

interface Pending {
  userId: string;
  conversationId: string;
  upTo: number;
  /** Who sent the messages delivered: they get the receipt (ids, or usernames from a replay). */
  senderIds: Set<string>;
  senderNames: Set<string>;
}

export class Receipts {
  private pending = new Map<string, Pending>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly d: ReceiptsDeps) {
    this.timer = setInterval(() => void this.flush(), d.flushMs);
    this.timer.unref();
  }

  /**
   * The caller read a conversation up to `upTo`: the watermark moves forward only; the caller's
   * other devices learn it, and so do the other members, unless the reader or they have turned
   * read receipts off or a block stands between them.
   */
  async read(caller: Caller, frame: ReadFrame): Promise<void> {
    const found = await callerConversation(this.d.store, caller, frame);
    if (!found) return;
    const { conversationId, members } = found;
    const [moved] = await this.d.store.advanceWatermarks('read', [
      { userId: caller.userId, conversationId, upTo: frame.upTo },
    ]);
    if (!moved) return;
    const frameText = encodeFrame({
      type: 'receipt',
      conversationId,
      user: caller.username,
      kind: 'read',
      upTo: moved.upTo,
    });
    const others = members.filter((id) => id !== caller.userId);
    const audience = (await this.d.store.getSettings(caller.userId)).readReceipts
      ? await this.visible(caller.userId, others, true)
      : [];
    void this.d.bus.publish({
      type: 'signal',
      userIds: [caller.userId, ...audience],
      frame: frameText,
    });
  }

  /** A message reached `userId`; recorded now, written with the next flush. */
  delivered(
    userId: string,
    conversationId: string,
    messageId: string,
    sender?: { id?: string; name?: string },
  ): void {
    const key = `${userId}:${conversationId}`;
    let p = this.pending.get(key);
    if (!p) {
      p = { userId, conversationId, upTo: 0, senderIds: new Set(), senderNames: new Set() };
      this.pending.set(key, p);
    }
    p.upTo = Math.max(p.upTo, Number(messageId));
    if (sender?.id !== undefined) p.senderIds.add(sender.id);
    else if (sender?.name !== undefined) p.senderNames.add(sender.name);
  }

  /** Writes the gathered deliveries and sends their receipts to the senders. */
  flush(): Promise<void> {
    this.flushing = this.flushing
      .then(() => this.flushNow())
      .catch((err: unknown) => {
        this.d.log.error({ err }, 'writing delivered receipts failed');
      });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async flushNow(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    const moved = await this.d.store.advanceWatermarks(
      'delivered',
      batch.map(({ userId, conversationId, upTo }) => ({
        userId,
        conversationId,
        upTo: String(upTo),
      })),
    );
    const byKey = new Map(batch.map((p) => [`${p.userId}:${p.conversationId}`, p]));
    for (const [i, mark] of moved.entries()) {
      await this.announce(mark, byKey.get(`${mark.userId}:${mark.conversationId}`)!);
      // Thousands of receipts at once held the event loop (and every delivery behind them) for
      // tens of milliseconds: a turn of the event loop after every ANNOUNCE_CHUNK of them.
      if ((i + 1) % ANNOUNCE_CHUNK === 0) await new Promise<void>((done) => setImmediate(done));
    }
  }

  private async announce(mark: Watermark, p: Pending): Promise<void> {
    const senders = new Set(p.senderIds);
    for (const name of p.senderNames) {
      const user = await this.d.store.findUserByName(name);
      if (user) senders.add(user.id);
    }
    senders.delete(mark.userId);
    if (senders.size === 0) return;
    const user = await this.d.store.findUserById(mark.userId);
    if (!user) return;
    const audience = await this.visible(mark.userId, [...senders], false);
    if (audience.length === 0) return;
    void this.d.bus.publish({
      type: 'signal',
      userIds: audience,
      frame: encodeFrame({
        type: 'receipt',
        conversationId: mark.conversationId,
        user: user.username,
        kind: 'delivered',
        upTo: mark.upTo,
      }),
    });
  }

  /** Of `others`, those who may see `userId`'s receipts: no block either way, and (for reads) receipts on. */
  private async visible(userId: string, others: string[], reads: boolean): Promise<string[]> {
    if (others.length === 0) return [];
    const blocked = await this.d.store.blockedBetween(userId, others);
    const out: string[] = [];
    for (const id of others) {
      if (blocked.has(id)) continue;
      if (reads && !(await this.d.store.getSettings(id)).readReceipts) continue;
      out.push(id);
    }
    return out;
  }
}
