// One open WebSocket: who it is for, its bounded send queue, and the replay state that merges
// a stream replay with live messages without a gap or a duplicate.
import type { WebSocket } from 'ws';
import { closeCode, type CloseKey } from '../errors.js';
import type { ErrorCode } from '../protocol/frames.js';
import type { Socket } from 'node:net';
import type { WriteCoalescer } from './write-coalescer.js';

export class Connection {
  /** False after a ping until the pong comes back. */
  alive = true;
  /** While true, live messages wait in `held` (see replay in gateway.ts). */
  replaying = false;
  /** Live messages that arrived during a replay: [message id, frame]. */
  held: Array<[number, string]> = [];
  /** Characters sent in the current tick (about its bytes), see `send`. */
  private tickChars = 0;
  /** The newest id a replay sent: a live copy of an already replayed message is dropped. */
  replayedUpTo = 0;

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    readonly userId: string,
    readonly username: string,
    readonly sessionId: string,
    private readonly maxBufferedBytes: number,
    private readonly coalescer: WriteCoalescer,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Sends a serialised frame; a reader that lets the queue overflow is closed with 1013. */
  send(frame: string): void {
    if (!this.open) return;
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (socket?.writableCorked === 0) {
      // First write of this tick. The last tick's frames went out as one write that may still
      // be in flight, so they do not count as backlog: only what is older does.
      if (this.ws.bufferedAmount - this.tickChars > this.maxBufferedBytes) {
        this.ws.close(closeCode('send_queue_full'), 'send_queue_full');
        return;
      }
      this.tickChars = 0;
      this.coalescer.hold(socket);
    }
    this.tickChars += frame.length;
    this.ws.send(frame);
  }

  /** A live message from the bus: held back while a replay runs, else sent at once. */
  deliver(messageId: string, frame: string): void {
    const id = Number(messageId);
    if (this.replaying) this.held.push([id, frame]);
    else if (id > this.replayedUpTo) this.send(frame);
  }

  sendError(code: ErrorCode, message: string, clientId?: string): void {
    this.send(
      JSON.stringify(
        clientId === undefined
          ? { type: 'error', code, message }
          : { type: 'error', code, message, clientId },
      ),
    );
  }

  /** Ends the connection for a catalogue reason: its close code, and its key as the reason. */
  close(reason: CloseKey): void {
    if (this.ws.readyState === this.ws.CONNECTING || this.open)
      this.ws.close(closeCode(reason), reason);
  }
}
