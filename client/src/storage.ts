// What a client keeps between connections, per user: the outbox (sends, edits and deletions not
// yet acked, with their clientId) and the sync cursor. In memory by default; indexedDbStorage()
// (indexeddb.ts) keeps it across page reloads.
import type { DeleteFrame, EditFrame, SendFrame } from './protocol.js';

/** A frame the server acks: a message, an edit or a deletion, always with its clientId. */
export type OutboxFrame =
  | (SendFrame & { clientId: string })
  | (EditFrame & { clientId: string })
  | (DeleteFrame & { clientId: string });

export interface OutboxEntry {
  /** The user who wrote it: only their client sends it. */
  userId: string;
  clientId: string;
  frame: OutboxFrame;
  /** When it was queued (ms since the epoch); entries go out in this order. */
  queuedAt: number;
  /** Breaks ties of `queuedAt`. */
  seq: number;
}

export interface ClientStorage {
  /** The user's unacked entries, oldest first. */
  loadOutbox(userId: string): Promise<OutboxEntry[]>;
  putOutbox(entry: OutboxEntry): Promise<void>;
  deleteOutbox(userId: string, clientId: string): Promise<void>;
  loadCursor(userId: string): Promise<string | null>;
  saveCursor(userId: string, cursor: string): Promise<void>;
  /** Forgets everything of the user (explicit logout). */
  clearUser(userId: string): Promise<void>;
  close?(): void;
}

export const byQueueOrder = (a: OutboxEntry, b: OutboxEntry): number =>
  a.queuedAt - b.queuedAt || a.seq - b.seq;

/** In memory: lost when the process or page goes, shared by clients given the same instance. */
export function memoryStorage(): ClientStorage {
  const outbox = new Map<string, Map<string, OutboxEntry>>();
  const cursors = new Map<string, string>();
  const userBox = (userId: string) => {
    let box = outbox.get(userId);
    if (!box) outbox.set(userId, (box = new Map()));
    return box;
  };
  return {
    loadOutbox: async (userId) => [...userBox(userId).values()].sort(byQueueOrder),
    putOutbox: async (entry) => {
      userBox(entry.userId).set(entry.clientId, structuredClone(entry));
    },
    deleteOutbox: async (userId, clientId) => {
      userBox(userId).delete(clientId);
    },
    loadCursor: async (userId) => cursors.get(userId) ?? null,
    saveCursor: async (userId, cursor) => {
      cursors.set(userId, cursor);
    },
    clearUser: async (userId) => {
      outbox.delete(userId);
      cursors.delete(userId);
    },
  };
}
