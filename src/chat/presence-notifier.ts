// Pushes presence to the users who share a conversation with a user: when their first connection
// on this node opens or their last one closes, it waits `coalesceMs`, asks who is online across
// every node, and tells the contacts only if that differs from what it told them last, so a
// flapping connection floods no one. Going offline records "last seen" (shown unless hidden).
import type { Bus } from '../bus/bus.js';
import { encodeFrame } from '../protocol/codec.js';
import type { Store } from '../storage/store.js';
import type { ErrorLog } from './caller.js';

export interface PresenceNotifierDeps {
  store: Store;
  bus: Bus;
  log: ErrorLog;
  /** Whether the user has a connection on any node. */
  isOnline: (userId: string) => Promise<boolean>;
  coalesceMs: number;
  now?: () => Date;
}

export class PresenceNotifier {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** What this node last told a user's contacts. */
  private readonly told = new Map<string, boolean>();
  private closed = false;

  constructor(private readonly d: PresenceNotifierDeps) {}

  /** The user's connections on this node went from none to some, or from some to none. */
  changed(userId: string): void {
    if (this.closed || this.timers.has(userId)) return;
    const timer = setTimeout(() => {
      this.timers.delete(userId);
      void this.check(userId).catch((err: unknown) =>
        this.d.log.error({ err }, 'pushing presence failed'),
      );
    }, this.d.coalesceMs);
    timer.unref();
    this.timers.set(userId, timer);
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private async check(userId: string): Promise<void> {
    const online = await this.d.isOnline(userId);
    if (this.told.get(userId) === online) return;
    // Bounded: forgetting only costs a repeated push.
    if (this.told.size >= 100_000) this.told.clear();
    this.told.set(userId, online);
    if (!online) await this.d.store.setLastSeen(userId, (this.d.now ?? (() => new Date()))());
    const [user, contacts, settings] = await Promise.all([
      this.d.store.findUserById(userId),
      this.d.store.contactsOf(userId),
      this.d.store.getSettings(userId),
    ]);
    if (!user || contacts.length === 0) return;
    const blocked = await this.d.store.blockedBetween(userId, contacts);
    const userIds = contacts.filter((id) => !blocked.has(id));
    if (userIds.length === 0) return;
    const lastSeen =
      online || !settings.showLastSeen ? null : await this.d.store.getLastSeen(userId);
    void this.d.bus.publish({
      type: 'signal',
      userIds,
      frame: encodeFrame({ type: 'presence', user: user.username, online, lastSeen }),
    });
  }
}
