// Presence in Redis, for several nodes. Keys (under a configurable prefix, `chat:` by default):
//   presence:<userId>  a set of the node ids where the user has an open connection
//   node:<nodeId>      this node's liveness key, set with a TTL (30 s) and refreshed every 10 s
// A user is online if some node in their set still has its liveness key, so a crashed node's
// entries stop counting within the TTL; `isOnline` removes such dead members as it meets them.
// One command per call, in one connection: a node's online/offline changes apply in call order.
// After a reconnect, a failed write, or a liveness key found missing (expired while the event loop
// was stuck, or Redis restarted empty), the node writes its whole state again.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Presence } from './presence.js';
import { consoleLogger, FailureLog, type RedisLogger } from './redis-bus.js';

export interface RedisPresenceOptions {
  /** Unique per node (process); share the bus' `nodeId` so both name the node alike. */
  nodeId: string;
  /** Prepended to every key (default `chat:`); tests use a random one. */
  prefix?: string;
  /** Lifetime of the liveness key (default 30 s). */
  ttlMs?: number;
  /** How often the liveness key is refreshed (default 10 s); well below `ttlMs`. */
  refreshMs?: number;
  logger?: RedisLogger;
}

interface PresenceScripts {
  /** 1 if a member of KEYS[1] has a live `ARGV[1]<member>` key; removes dead members. */
  chatPresenceAlive(userKey: string, nodeKeyPrefix: string): Promise<number>;
  /** Sets KEYS[1] to ARGV[1] for ARGV[2] ms; 1 if it existed before. */
  chatPresenceRefresh(nodeKey: string, label: string, ttlMs: number): Promise<number>;
}

const ALIVE_LUA = `
local alive = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 1 then
    alive = 1
  else
    redis.call('SREM', KEYS[1], node)
  end
end
return alive`;

const REFRESH_LUA = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return existed`;

export class RedisPresence implements Presence {
  readonly description: string;
  readonly nodeId: string;
  private readonly client: Redis & PresenceScripts;
  private readonly prefix: string;
  private readonly nodeKey: string;
  private readonly ttlMs: number;
  private readonly label = `${hostname()}:${process.pid}`;
  /** Users with a connection on this node. */
  private readonly local = new Set<string>();
  /** Users gone offline here whose removal Redis may not have applied. */
  private readonly unconfirmedRemovals = new Set<string>();
  /** Set when a write failed: the next refresh writes the whole state again. */
  private dirty = false;
  private readonly failures: FailureLog;
  private readonly timer: NodeJS.Timeout;
  private readonly onReady = () => void this.resync();
  private refreshing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  /** Uses `client` (e.g. the bus' publisher, `RedisBus.client`) without owning it. */
  constructor(client: Redis, options: RedisPresenceOptions) {
    this.client = client as Redis & PresenceScripts;
    this.nodeId = options.nodeId;
    this.prefix = options.prefix ?? 'chat:';
    this.nodeKey = `${this.prefix}node:${this.nodeId}`;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.description = `redis://${client.options.host ?? 'localhost'}:${client.options.port ?? 6379}`;
    this.failures = new FailureLog(
      options.logger ?? consoleLogger,
      `redis presence ${this.description}`,
    );
    client.defineCommand('chatPresenceAlive', { numberOfKeys: 1, lua: ALIVE_LUA });
    client.defineCommand('chatPresenceRefresh', { numberOfKeys: 1, lua: REFRESH_LUA });
    client.on('ready', this.onReady);
    this.timer = setInterval(() => void this.refresh(), options.refreshMs ?? 10_000);
    this.timer.unref();
    void this.refresh();
  }

  online(userId: string): void {
    if (this.closing) return;
    this.local.add(userId);
    this.unconfirmedRemovals.delete(userId);
    this.client.sadd(this.userKey(userId), this.nodeId).catch((error: unknown) => {
      this.failures.record(error, 'online');
      this.dirty = true;
    });
  }

  offline(userId: string): void {
    if (this.closing) return;
    this.local.delete(userId);
    this.client.srem(this.userKey(userId), this.nodeId).catch((error: unknown) => {
      this.failures.record(error, 'offline');
      if (!this.local.has(userId)) this.unconfirmedRemovals.add(userId);
      this.dirty = true;
    });
  }

  async isOnline(userId: string): Promise<boolean> {
    if (this.local.has(userId)) return true;
    if (this.closing) return false;
    try {
      return (
        (await this.client.chatPresenceAlive(this.userKey(userId), `${this.prefix}node:`)) === 1
      );
    } catch (error) {
      this.failures.record(error, 'isOnline');
      return false; // this node's own connections are all it can vouch for
    }
  }

  /**
   * Extends the liveness key; writes the whole state again if the key had gone or a write failed.
   * The timer calls it; never rejects.
   */
  refresh(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.refreshing = (async () => {
      try {
        const existed = await this.client.chatPresenceRefresh(this.nodeKey, this.label, this.ttlMs);
        if (existed === 0 || this.dirty) await this.resync();
      } catch (error) {
        this.failures.record(error, 'refresh');
        this.dirty = true;
      }
    })();
    return this.refreshing;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      this.client.off('ready', this.onReady);
      await this.refreshing; // so that its SET cannot land after the DEL
      const users = new Set([...this.local, ...this.unconfirmedRemovals]);
      this.local.clear();
      this.unconfirmedRemovals.clear();
      try {
        await Promise.all([
          ...[...users].map((userId) => this.client.srem(this.userKey(userId), this.nodeId)),
          this.client.del(this.nodeKey),
        ]);
      } catch (error) {
        // The liveness key expires on its own; the entries stop counting then.
        this.failures.record(error, 'close');
      }
    })();
    return this.closing;
  }

  private userKey(userId: string): string {
    return `${this.prefix}presence:${userId}`;
  }

  /** Writes this node's whole state: the liveness key, every local user, pending removals. */
  private async resync(): Promise<void> {
    if (this.closing) return;
    this.dirty = false;
    const removals = [...this.unconfirmedRemovals].filter((userId) => !this.local.has(userId));
    this.unconfirmedRemovals.clear();
    try {
      await Promise.all([
        this.client.set(this.nodeKey, this.label, 'PX', this.ttlMs),
        ...[...this.local].map((userId) => this.client.sadd(this.userKey(userId), this.nodeId)),
        ...removals.map((userId) => this.client.srem(this.userKey(userId), this.nodeId)),
      ]);
      this.failures.recovered('resync');
    } catch (error) {
      this.failures.record(error, 'resync');
      for (const userId of removals)
        if (!this.local.has(userId)) this.unconfirmedRemovals.add(userId);
      this.dirty = true;
    }
  }
}
