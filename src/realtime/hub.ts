// The connections open on this node, by user and by session, fed by bus events: deliveries go
// to every connection of the recipients but the sender's own; a revoked session's connections
// close with 4001.
import type { Bus, BusEvent } from '../bus/bus.js';
import { CLOSE } from '../errors.js';
import type { Connection } from './connection.js';

export class Hub {
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly bySession = new Map<string, Set<Connection>>();
  private readonly unsubscribe: () => void;

  constructor(bus: Bus) {
    this.unsubscribe = bus.subscribe((event) => this.onEvent(event));
  }

  /** Open connections on this node. */
  size = 0;

  add(conn: Connection): void {
    addTo(this.byUser, conn.userId, conn);
    addTo(this.bySession, conn.sessionId, conn);
    this.size += 1;
  }

  remove(conn: Connection): void {
    if (!this.byUser.get(conn.userId)?.has(conn)) return;
    removeFrom(this.byUser, conn.userId, conn);
    removeFrom(this.bySession, conn.sessionId, conn);
    this.size -= 1;
  }

  isOnline(userId: string): boolean {
    return this.byUser.has(userId);
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
          for (const conn of conns) {
            if (conn.id !== event.exceptConnectionId) conn.deliver(event.messageId, event.frame);
          }
        }
        break;
      case 'session_revoked':
        for (const sessionId of event.sessionIds) {
          for (const conn of this.bySession.get(sessionId) ?? [])
            conn.close(CLOSE.sessionRevoked, 'session_revoked');
        }
        break;
    }
  }
}

function addTo(map: Map<string, Set<Connection>>, key: string, conn: Connection): void {
  const set = map.get(key);
  if (set) set.add(conn);
  else map.set(key, new Set([conn]));
}

function removeFrom(map: Map<string, Set<Connection>>, key: string, conn: Connection): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(conn);
  if (set.size === 0) map.delete(key);
}
