// The Redis Bus: one pub/sub channel shared by every node of a deployment. Local first: `publish`
// runs this node's handlers synchronously, as the memory bus does, then PUBLISHes for the other
// nodes; each node ignores the events it published itself. Two connections, since a subscribed
// connection cannot publish: a publisher (auto-pipelined, no offline queue, so an outage fails
// fast instead of buffering without bound) and a subscriber (resubscribes on reconnect).
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Bus, BusEvent, BusHandler } from './bus.js';

/** The part of a pino (or Fastify) logger the Redis seams use. */
export interface RedisLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RedisBusOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`. */
  url: string;
  /** The pub/sub channel; every node of one deployment uses the same one. */
  channel?: string;
  /** Unique per node (process); random by default. Events carry it so a node skips its own. */
  nodeId?: string;
  /** How long `openRedisBus` waits for both connections (default 10 s). */
  connectTimeoutMs?: number;
  /** How long a command may wait for its reply before it rejects (default 5 s). */
  commandTimeoutMs?: number;
  logger?: RedisLogger;
}

export const DEFAULT_CHANNEL = 'chat:events';

/**
 * Opens a Redis bus and waits until it can publish and is subscribed; rejects with a readable
 * message (without credentials) if Redis cannot be reached within `connectTimeoutMs`.
 */
export async function openRedisBus(options: RedisBusOptions): Promise<RedisBus> {
  const bus = new RedisBus(options);
  try {
    await bus.ready(options.connectTimeoutMs ?? 10_000);
  } catch (error) {
    await bus.close();
    throw error;
  }
  return bus;
}

/** `redis://host:port` (or `rediss://`) for logs and errors: never user name or password. */
export function describeRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // URL's own error carries the input, credentials included.
    throw new Error('the Redis URL is not a valid URL (expected redis://host:port)');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw new Error(
      `the Redis URL must start with redis:// or rediss://, not ${parsed.protocol}//`,
    );
  return `${parsed.protocol}//${parsed.hostname || 'localhost'}:${parsed.port || '6379'}`;
}

export class RedisBus implements Bus {
  readonly description: string;
  readonly nodeId: string;
  readonly channel: string;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Set<BusHandler>();
  private readonly subscribed: Promise<unknown>;
  private readonly failures: FailureLog;
  private readonly handlerFailures: FailureLog;
  private closing: Promise<void> | undefined;
  /** Events published in this tick, sent together in one PUBLISH (see `publish`). */
  private pending: BusEvent[] = [];
  private flushing: Promise<void> | undefined;
  /** How this node's own envelopes start, so the subscriber skips them without parsing. */
  private readonly ownPrefix: string;

  constructor(options: RedisBusOptions) {
    this.description = describeRedisUrl(options.url);
    this.nodeId = options.nodeId ?? randomBytes(8).toString('hex');
    this.channel = options.channel ?? DEFAULT_CHANNEL;
    this.ownPrefix = JSON.stringify({ o: this.nodeId, es: [] }).slice(0, -3);
    const log = options.logger ?? consoleLogger;
    this.failures = new FailureLog(log, `redis bus ${this.description}`);
    this.handlerFailures = new FailureLog(log, `redis bus ${this.description}`);
    const common: RedisOptions = {
      commandTimeout: options.commandTimeoutMs ?? 5_000,
    };
    this.pub = new Redis(options.url, {
      ...common,
      connectionName: `chat-bus-pub-${this.nodeId}`,
      enableAutoPipelining: true,
      // Best effort: while Redis is unreachable a publish fails at once (a message stream must
      // not pile up in memory), and a PUBLISH in flight when the connection broke is not sent
      // again (it may have been delivered: at most once).
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
    });
    this.sub = new Redis(options.url, {
      ...common,
      connectionName: `chat-bus-sub-${this.nodeId}`,
    });
    for (const [role, client] of [
      ['publisher', this.pub],
      ['subscriber', this.sub],
    ] as const) {
      client.on('error', (error: unknown) => this.failures.record(error, `${role} connection`));
      client.on('ready', () => this.failures.recovered(`${role} connection`));
    }
    this.sub.on('message', (channel: string, payload: string) => {
      if (channel === this.channel) this.receive(payload);
    });
    // Subscribes once connected (ioredis resubscribes after reconnects), so that a server that
    // never answers leaves no queued command and no timer behind once `close` gave up on it.
    this.subscribed = whenReady(this.sub).then(() => this.sub.subscribe(this.channel));
    this.subscribed.catch(() => {}); // surfaced by ready(); a later failure by the 'error' event
  }

  /** The publisher connection, for state shared across nodes (RedisPresence). Not subscribed. */
  get client(): Redis {
    return this.pub;
  }

  /** Resolves once both connections are ready and the channel is subscribed. */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const last = this.failures.lastMessage;
        reject(
          new Error(
            `could not connect to Redis at ${this.description} within ${timeoutMs} ms` +
              (last ? `: ${last}` : ''),
          ),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([
        Promise.all([whenReady(this.pub), whenReady(this.sub), this.subscribed]),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs this node's handlers now, then queues the event for the other nodes. Every event
   * published in one tick (a commit's deliveries are published together) leaves in one PUBLISH
   * of an array, in publish order: one Redis command and one parse per batch, not per message.
   */
  publish(event: BusEvent): Promise<void> {
    for (const handler of this.handlers) this.run(handler, event);
    if (this.closing) {
      const refused = Promise.reject(new Error(`the Redis bus ${this.description} is closed`));
      refused.catch(() => {});
      return refused;
    }
    this.pending.push(event);
    this.flushing ??= new Promise<void>((resolve) => process.nextTick(resolve)).then(() => {
      const events = this.pending;
      this.pending = [];
      this.flushing = undefined;
      return this.send(events);
    });
    const sent = this.flushing;
    sent.catch(() => {}); // failures are logged by send(); callers may `void` the promise
    return sent;
  }

  subscribe(handler: BusHandler): () => void {
    // A wrapper per subscription, so that subscribing one function twice works like the memory bus.
    const entry: BusHandler = (event) => handler(event);
    this.handlers.add(entry);
    return () => this.handlers.delete(entry);
  }

  async ping(): Promise<void> {
    // Not a PING on a connection that is down: under load it would wait behind the PUBLISHes
    // stuck on the dead socket until the command timeout (5 s) before failing.
    if (this.pub.status !== 'ready')
      throw new Error(`the publisher connection to ${this.description} is ${this.pub.status}`);
    await this.pub.ping();
    if (this.sub.status !== 'ready')
      throw new Error(`the subscriber connection to ${this.description} is ${this.sub.status}`);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.handlers.clear();
      await Promise.all([quit(this.pub), quit(this.sub)]);
    })();
    return this.closing;
  }

  private async send(events: BusEvent[]): Promise<void> {
    if (this.closing) throw new Error(`the Redis bus ${this.description} is closed`);
    try {
      await this.pub.publish(this.channel, JSON.stringify({ o: this.nodeId, es: events }));
    } catch (error) {
      this.failures.record(error, 'publish');
      throw new Error(`publishing on ${this.description} failed: ${messageOf(error)}`);
    }
  }

  private receive(payload: string): void {
    if (payload.startsWith(this.ownPrefix)) return; // delivered locally inside publish()
    let envelope: unknown;
    try {
      envelope = JSON.parse(payload);
    } catch {
      envelope = undefined;
    }
    if (!isEnvelope(envelope)) {
      this.failures.record(new Error('not a bus event'), `message on ${this.channel}`);
      return;
    }
    if (envelope.o === this.nodeId) return;
    for (const event of envelope.es) {
      for (const handler of this.handlers) this.run(handler, event);
    }
  }

  private run(handler: BusHandler, event: BusEvent): void {
    try {
      handler(event);
    } catch (error) {
      // One failing handler must neither stop the others nor break the connection's parser.
      this.handlerFailures.record(error, `handler of a ${event.type} event`);
    }
  }
}

/** What one PUBLISH carries: the origin node and its events of one tick, in publish order. */
interface Envelope {
  o: string;
  es: BusEvent[];
}

function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const { o, es } = value as { o?: unknown; es?: unknown };
  return typeof o === 'string' && Array.isArray(es) && es.every(isEvent);
}

function isEvent(e: unknown): e is BusEvent {
  if (typeof e !== 'object' || e === null) return false;
  const event = e as Record<string, unknown>;
  switch (event.type) {
    case 'deliver':
      return (
        Array.isArray(event.userIds) &&
        typeof event.messageId === 'string' &&
        typeof event.frame === 'string'
      );
    case 'signal':
      return Array.isArray(event.userIds) && typeof event.frame === 'string';
    case 'session_revoked':
      return Array.isArray(event.sessionIds);
    default:
      return false;
  }
}

function whenReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      client.off('end', onEnd);
      resolve();
    };
    const onEnd = () => {
      client.off('ready', onReady);
      reject(new Error('the connection was closed'));
    };
    client.once('ready', onReady);
    client.once('end', onEnd);
  });
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect(); // connecting or reconnecting: nothing to say goodbye to
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect(); // unreachable: drop the socket and stop reconnecting
  }
}

/** An error's message only: a ReplyError also carries the command's arguments (AUTH's password). */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Logs failures without flooding: the first one at once, then at most one line per interval with
 * the count, and one line when the connection is back.
 */
export class FailureLog {
  lastMessage: string | undefined;
  private suppressed = 0;
  private lastLoggedAt = 0;
  private failing = false;

  constructor(
    private readonly log: RedisLogger,
    private readonly what: string,
    private readonly intervalMs = 5_000,
  ) {}

  record(error: unknown, context: string): void {
    this.lastMessage = messageOf(error);
    const now = Date.now();
    if (this.failing && now - this.lastLoggedAt < this.intervalMs) {
      this.suppressed += 1;
      return;
    }
    this.log.warn(
      {
        error: this.lastMessage,
        context,
        ...(this.suppressed ? { suppressed: this.suppressed } : {}),
      },
      `${this.what}: ${context} failed`,
    );
    this.failing = true;
    this.suppressed = 0;
    this.lastLoggedAt = now;
  }

  recovered(context: string): void {
    if (!this.failing) return;
    this.log.info(
      { context, ...(this.suppressed ? { suppressed: this.suppressed } : {}) },
      `${this.what}: ${context} recovered`,
    );
    this.failing = false;
    this.suppressed = 0;
  }
}

export const consoleLogger: RedisLogger = {
  info: () => {},
  warn: (obj, msg) => console.error(msg, obj),
};
