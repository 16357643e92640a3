// Who a use case acts for and answers to. A WebSocket connection is one (realtime/connection.ts);
// the use cases in chat/ know nothing of sockets, so they can be driven from anywhere.
import type { CloseKey } from '../errors.js';
import type { ServerFrame } from '../protocol/frames.js';

export interface Caller {
  readonly userId: string;
  /** The authenticated username, as registered. */
  readonly username: string;
  /** The caller's own connection: live fan-out skips it, since it gets the ack instead. */
  readonly connectionId: string;
  /** Sends the caller a frame; frames reach it in the order of these calls. */
  reply(frame: ServerFrame): void;
  /** False once the caller is gone: frames sent then are dropped. */
  readonly open: boolean;
  /** Whether the caller can take more frames now without its queue building up. */
  canTake(): boolean;
  /** Resolves once the caller's queue has drained, or it is gone. */
  drained(): Promise<void>;
  /**
   * Starts holding live messages back while a replay runs; false when a replay already runs.
   * Paired with `releaseLive`.
   */
  holdLive(): boolean;
  /**
   * Ends the hold: sends the held live messages newer than `lastSent` (the replay's last id) and
   * from then on drops live copies of what the replay sent. Returns the newest id now sent.
   */
  releaseLive(lastSent: string | undefined): string | undefined;
  /** Ends the caller's connection for a catalogue reason. */
  end(reason: CloseKey): void;
}

/** Where a use case reports what went wrong on the server (pino's logger satisfies it). */
export interface ErrorLog {
  error(details: { err: unknown }, message: string): void;
}
