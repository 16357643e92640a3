// The Bus carries events between the nodes of a deployment: message fan-out and session
// revocation. In-memory for one process (memory-bus.ts); Redis for several nodes (later).

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
    }
  | { type: 'session_revoked'; sessionIds: string[] };

export type BusHandler = (event: BusEvent) => void;

/**
 * Guarantees:
 * - Every subscriber on every node receives each published event at most once, and events from
 *   one publisher in the order they were published.
 * - Delivery is best effort: an event published while a node is unreachable is lost for that
 *   node. Nothing durable depends on the bus; clients recover messages by sync from the Store.
 * - `publish` resolves once the event is handed to the transport (for the memory bus: once every
 *   local handler has run).
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
