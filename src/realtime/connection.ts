// One open WebSocket as a Caller of the chat use cases: who it is for, its bounded send queue,
// and the private replay state that merges a stream replay with live messages without a gap or
// a duplicate.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Caller } from '../chat/caller.js';
import { closeCode, type CloseKey } from '../errors.js';
import { encodeFrame } from '../protocol/codec.js';
import type { ErrorCode, ServerFrame } from '../protocol/frames.js';
import type { WriteCoalescer } from './write-coalescer.js';

/** Error frames that are not the client's mistake: they cost nothing from the refusal budget. */
const NOT_REFUSALS = new Set<ErrorCode>(['rate_limited', 'internal_error']);

export class Connection implements Caller {
  /** False after a ping until the pong comes back. */
  alive = true;
  /** While true, live messages wait in `held` (see holdLive). */
  private replaying = false;
  /** Live messages that arrived during a replay: [message id, frame]. */
  private held: Array<[number, string]> = [];
  /** The newest id a replay sent: a live copy of an already replayed message is dropped. */
  private replayedUpTo = 0;
  /** Characters sent in the current tick (about its bytes), see `send`. */
  private tickChars = 0;

  constructor(
    readonly connectionId: string,
    readonly ws: WebSocket,
    readonly userId: string,
    readonly username: string,
    readonly sessionId: string,
    private readonly maxBufferedBytes: number,
    private readonly coalescer: WriteCoalescer,
    /** Told of every error frame sent, for metrics and logs. */
    private readonly onErrorFrame?: (conn: Connection, code: string) => void,
    /** Takes one refused frame from the sender's budget; false when it is spent. */
    private readonly takeRefusal: () => boolean = () => true,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  private get socket(): Socket | undefined {
    return (this.ws as unknown as { _socket?: Socket })._socket;
  }

  /** An error frame for the client's mistake costs its budget: past it, the connection ends. */
  reply(frame: ServerFrame): void {
    if (frame.type === 'error') {
      if (!NOT_REFUSALS.has(frame.code) && !this.takeRefusal()) return this.end('too_many_errors');
      this.onErrorFrame?.(this, frame.code);
    }
    this.send(encodeFrame(frame));
  }

  /** Sends a serialised frame; a reader that lets the queue overflow is closed with 1013. */
  send(frame: string): void {
    if (!this.open) return;
    const socket = this.socket;
    if (socket?.writableCorked === 0) {
      // First write of this tick. The last tick's frames went out as one write that may still
      // be in flight, so they do not count as backlog: only what is older does.
      if (this.ws.bufferedAmount - this.tickChars > this.maxBufferedBytes) {
        this.end('send_queue_full');
        return;
      }
      this.tickChars = 0;
      this.coalescer.hold(socket);
    }
    this.tickChars += frame.length;
    this.ws.send(frame);
  }

  /**
   * A replay goes on unless the socket signals backpressure with over half the send queue limit
   * queued: replayed frames then wait for 'drain' instead of crowding out live traffic.
   */
  canTake(): boolean {
    return !(this.socket?.writableNeedDrain && this.ws.bufferedAmount > this.maxBufferedBytes / 2);
  }

  async drained(): Promise<void> {
    const socket = this.socket;
    if (!this.open || !socket?.writableNeedDrain) return;
    const ac = new AbortController();
    try {
      await Promise.race([
        once(socket, 'drain', { signal: ac.signal }),
        once(this.ws, 'close', { signal: ac.signal }),
      ]);
    } finally {
      ac.abort();
    }
  }

  holdLive(): boolean {
    if (this.replaying) return false;
    this.replaying = true;
    return true;
  }

  releaseLive(lastSent: string | undefined): string | undefined {
    let last = lastSent;
    const lastId = last === undefined ? 0 : Number(last);
    for (const [id, frame] of this.held) {
      if (id > lastId) {
        this.send(frame);
        last = String(id);
      }
    }
    this.held = [];
    this.replayedUpTo = Math.max(this.replayedUpTo, last === undefined ? 0 : Number(last));
    this.replaying = false;
    return last;
  }

  /** A live message from the bus: held back while a replay runs, else sent at once. */
  deliver(messageId: string, frame: string): void {
    const id = Number(messageId);
    if (this.replaying) this.held.push([id, frame]);
    else if (id > this.replayedUpTo) this.send(frame);
  }

  /**
   * A frame outside the stream (receipt, typing, presence): sent at once, even during a replay.
   * A droppable one is dropped instead when the socket is backed up: typing never delays or
   * crowds out a message.
   */
  signal(frame: string, droppable: boolean): void {
    if (droppable && this.ws.bufferedAmount > this.maxBufferedBytes / 8) return;
    this.send(frame);
  }

  /** Ends the connection for a catalogue reason: its close code, and its key as the reason. */
  end(reason: CloseKey): void {
    if (this.ws.readyState === this.ws.CONNECTING || this.open)
      this.ws.close(closeCode(reason), reason);
  }
}
