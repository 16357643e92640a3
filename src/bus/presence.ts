// Presence: which users have an open connection on any live node of the deployment. The Hub
// reports its own users' first and last connections; anyone may ask about any user. In memory for
// one process (LocalPresence, below); in Redis for several nodes (redis-presence.ts).

/**
 * Guarantees:
 * - Calls come from one Hub per node, balanced: `online(u)` when u's first connection on this node
 *   opens, `offline(u)` when u's last one closes, never two `online(u)` in a row.
 * - `online`/`offline` are fire-and-forget and never throw; their effects are applied in call
 *   order per node. Another node may see them a round trip later.
 * - `isOnline(u)` is true at once on the node where u is connected. On other nodes it is true
 *   while u has a connection on a node that is alive; a node that stops (even by crashing) stops
 *   counting within a bounded time (RedisPresence: its liveness TTL, 30 s by default).
 * - `isOnline` never rejects: when the shared state is unreachable it answers from this node's
 *   connections only (and the implementation logs the failure).
 * - `close()` withdraws this node's users (as if each went offline) and is safe to call twice;
 *   later `online`/`offline` calls are ignored.
 */
export interface Presence {
  /** For the start-up line, e.g. `local` or `redis://host:6379`. */
  readonly description: string;
  /** The first connection of `userId` on this node opened. Fire-and-forget; ordered per node. */
  online(userId: string): void;
  /** The last connection of `userId` on this node closed. */
  offline(userId: string): void;
  /** Whether the user has an open connection on any live node. */
  isOnline(userId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** One node: the users the Hub reported online, in memory. */
export class LocalPresence implements Presence {
  readonly description = 'local';
  private readonly users = new Set<string>();
  private closed = false;

  online(userId: string): void {
    if (!this.closed) this.users.add(userId);
  }

  offline(userId: string): void {
    this.users.delete(userId);
  }

  async isOnline(userId: string): Promise<boolean> {
    return this.users.has(userId);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.users.clear();
  }
}
