// The Bus carries events between the nodes of a deployment: message fan-out and session
// revocation. In-memory for one process (memory-bus.ts); Redis pub/sub for several nodes behind a
// load balancer (redis-bus.ts). Which users are connected anywhere is a separate seam, Presence
// (presence.ts), since it is state rather than events.

/** Events on the bus, a discriminated union keyed by `type`. */
export type BusEvent =
  | {
      type: 'deliver';
      /** Users whose open connections get the frame. */
      userIds: string[];
      /** The stored message's id, so a connection replaying its stream can drop duplicates. */
      messageId: string;
      /** The frame, serialised once for every recipient. */
      frame: string;
      /** The sending connection, which gets an ack instead. */
      exceptConnectionId?: string;
      /**
       * Set for a new message: each recipient (not the sender) who gets it on a connection moves
       * their delivered watermark of the conversation.
       */
      receipt?: { conversationId: string; senderId: string };
      /** When the message was committed (epoch ms), for the delivery-lag metric. */
      committedAt?: number;
    }
  /** A frame that is not part of the stream (receipts, typing, presence): sent, never replayed. */
  | {
      type: 'signal';
      userIds: string[];
      frame: string;
      exceptConnectionId?: string;
      /** Dropped, not queued, for a connection whose send queue is backed up (typing). */
      droppable?: boolean;
    }
  | { type: 'session_revoked'; sessionIds: string[] };

export type BusHandler = (event: BusEvent) => void;

/**
 * Guarantees:
 * - Every subscriber on every node receives each published event at most once, and events from
 *   one publisher in the order they were published.
 * - Local first: the publishing node's own handlers run synchronously inside `publish`, before it
 *   returns, exactly as with the memory bus, so fan-out to connections on the same node costs no
 *   transport round trip and needs no separate synchronous API; the transport never echoes an
 *   event back to its publisher. Other nodes' handlers run when the event reaches them.
 * - Delivery is best effort: an event published while a node is unreachable is lost for that
 *   node. Nothing durable depends on the bus; clients recover messages by sync from the Store.
 * - `publish` never throws synchronously. Its promise resolves once the event is handed to the
 *   transport (memory bus: once every local handler has run; Redis bus: once Redis replied to the
 *   PUBLISH) and rejects, after a bounded time, if the transport did not take it. An
 *   implementation reports its own transport failures and never lets that rejection go
 *   unhandled, so a hot path may `void` the promise; a caller that awaits it sees the rejection.
 */
export interface Bus {
  /** For the start-up line, e.g. `memory` or `redis://host:6379`. */
  readonly description: string;
  publish(event: BusEvent): Promise<void>;
  /** Adds a handler; returns a function that removes it. */
  subscribe(handler: BusHandler): () => void;
  /** Resolves when the transport is reachable (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
