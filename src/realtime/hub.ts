// The connections open on this node, by user and by session, fed by bus events: deliveries go
// to every connection of the recipients but the sender's own; a revoked session's connections
// close with 4001. It tells Presence when a user's first connection on this node opens and when
// their last one closes, and asks it whether a user is online anywhere.
import type { Bus, BusEvent } from '../bus/bus.js';
import { LocalPresence, type Presence } from '../bus/presence.js';
import type { Connection } from './connection.js';

/** What the hub tells the chat use cases. */
export interface HubHooks {
  /** A message reached a connection of `userId` (not its sender's): delivered receipts. */
  onDelivered?: (
    userId: string,
    conversationId: string,
    messageId: string,
    senderId: string,
  ) => void;
  /** `userId`'s first connection on this node opened or their last one closed. */
  onPresenceChange?: (userId: string) => void;
  /** A stored message's frame was written to this node's connections: seconds since its commit. */
  onDeliveryLag?: (seconds: number) => void;
}

export class Hub {
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly bySession = new Map<string, Set<Connection>>();
  private readonly unsubscribe: () => void;

  constructor(
    bus: Bus,
    private readonly presence: Presence = new LocalPresence(),
    private readonly hooks: HubHooks = {},
  ) {
    this.unsubscribe = bus.subscribe((event) => this.onEvent(event));
  }

  /** Open connections on this node. */
  size = 0;

  add(conn: Connection): void {
    if (addTo(this.byUser, conn.userId, conn)) {
      this.presence.online(conn.userId);
      this.hooks.onPresenceChange?.(conn.userId);
    }
    addTo(this.bySession, conn.sessionId, conn);
    this.size += 1;
  }

  remove(conn: Connection): void {
    if (!this.byUser.get(conn.userId)?.has(conn)) return;
    if (removeFrom(this.byUser, conn.userId, conn)) {
      this.presence.offline(conn.userId);
      this.hooks.onPresenceChange?.(conn.userId);
    }
    removeFrom(this.bySession, conn.sessionId, conn);
    this.size -= 1;
  }

  /** Whether the user has an open connection on this node or, per Presence, on any live node. */
  isOnline(userId: string): Promise<boolean> {
    if (this.byUser.has(userId)) return Promise.resolve(true);
    return this.presence.isOnline(userId);
  }

  all(): Iterable<Connection> {
    return [...this.byUser.values()].flatMap((set) => [...set]);
  }

  stop(): void {
    this.unsubscribe();
  }

  private onEvent(event: BusEvent): void {
    switch (event.type) {
      case 'deliver':
        for (const userId of event.userIds) {
          const conns = this.byUser.get(userId);
          if (!conns) continue;
          let reached = false;
          for (const conn of conns) {
            if (conn.connectionId === event.exceptConnectionId) continue;
            conn.deliver(event.messageId, event.frame);
            reached = true;
          }
          if (reached && event.committedAt !== undefined)
            this.hooks.onDeliveryLag?.(Math.max(0, Date.now() - event.committedAt) / 1000);
          const r = event.receipt;
          if (r && reached && userId !== r.senderId)
            this.hooks.onDelivered?.(userId, r.conversationId, event.messageId, r.senderId);
        }
        break;
      case 'signal':
        for (const userId of event.userIds) {
          for (const conn of this.byUser.get(userId) ?? []) {
            if (conn.connectionId !== event.exceptConnectionId)
              conn.signal(event.frame, event.droppable === true);
          }
        }
        break;
      case 'session_revoked':
        for (const sessionId of event.sessionIds) {
          for (const conn of this.bySession.get(sessionId) ?? []) conn.end('session_revoked');
        }
        break;
    }
  }
}

/** Adds `conn` under `key`; true if it is the key's first connection. */
function addTo(map: Map<string, Set<Connection>>, key: string, conn: Connection): boolean {
  const set = map.get(key);
  if (set) {
    set.add(conn);
    return false;
  }
  map.set(key, new Set([conn]));
  return true;
}

/** Removes `conn` from under `key`; true if it was the key's last connection. */
function removeFrom(map: Map<string, Set<Connection>>, key: string, conn: Connection): boolean {
  const set = map.get(key);
  if (!set) return false;
  set.delete(conn);
  if (set.size > 0) return false;
  map.delete(key);
  return true;
}
