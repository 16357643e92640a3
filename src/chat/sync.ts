// Catching up: a page of the caller's stream (GET /sync), and a replay of it to a live caller
// merged with the live events that arrive meanwhile, so nothing is missed or sent twice. Messages
// that reach the caller by a replay count as delivered, like live ones.
import type { Store } from '../storage/store.js';
import type { Caller, ErrorLog } from './caller.js';

export interface SyncDeps {
  store: Store;
  /** Events read from the store at a time during a replay. */
  pageSize: number;
  log: ErrorLog;
  /** A message of someone else reached `userId` (for delivered receipts). */
  onDelivered?: (
    userId: string,
    conversationId: string,
    messageId: string,
    senderId?: string,
  ) => void;
  /** A sync was served (a GET /sync page, a WebSocket replay) with this many events, for metrics. */
  onSync?: (via: 'http' | 'websocket', events: number) => void;
}

export class Sync {
  constructor(private readonly d: SyncDeps) {}

  /** The user's stream after `after`, oldest first; `lastId` is the next cursor. */
  async page(userId: string, after: string | undefined, limit: number) {
    const page = await this.d.store.stream(userId, after, limit);
    this.d.onSync?.('http', page.events.length);
    return {
      messages: page.events,
      hasMore: page.hasMore,
      lastId: page.events.at(-1)?.id ?? after ?? null,
    };
  }

  /**
   * Replays the caller's stream after `after`, then sends `synced`. Live events are held by the
   * caller while pages are read; those newer than the last replayed id follow. Ids grow in commit
   * order, so nothing is missed and nothing is sent twice. A failed read ends the connection
   * (`sync_failed`): the client reconnects and syncs again.
   */
  async replay(caller: Caller, after: string | undefined, clientId?: string): Promise<void> {
    if (!caller.holdLive()) {
      return caller.reply({
        type: 'error',
        code: 'invalid_message',
        message: 'A sync is already running',
        clientId,
      });
    }
    let cursor = after;
    let failed = false;
    let replayed = 0;
    try {
      for (;;) {
        const page = await this.d.store.stream(caller.userId, cursor, this.d.pageSize);
        for (const event of page.events) {
          // Replay at the reader's pace: the send queue limit is for live traffic.
          while (caller.open && !caller.canTake()) await caller.drained();
          if (!caller.open) break;
          caller.reply(event);
          replayed += 1;
          cursor = event.id;
          if (event.type === 'message' && event.sender !== caller.username)
            this.d.onDelivered?.(caller.userId, event.conversationId, event.id, event.sender);
        }
        if (!page.hasMore || !caller.open) break;
      }
    } catch (error) {
      this.d.log.error({ err: error }, 'replay failed');
      failed = true;
      caller.end('sync_failed');
    } finally {
      cursor = caller.releaseLive(cursor);
      this.d.onSync?.('websocket', replayed);
    }
    if (!failed) caller.reply({ type: 'synced', lastId: cursor ?? null });
  }
}
