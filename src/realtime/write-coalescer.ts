// Coalesces the frames written to a socket within one tick into one syscall: the first frame
// corks the socket and one nextTick uncorks every socket corked since. A batch commit sends
// many acks and deliveries to the same sockets at once; unbatched, `writev` alone was 14% of the
// main thread in the throughput profile.
//
// A burst to thousands of sockets at once (a receipts flush, the heartbeat) is uncorked at most
// `maxPerTurn` sockets per turn of the event loop, the rest on the next turns: each uncork is a
// `writev`, and thousands in one go held the event loop for 50-300 ms in the soak profile.
import type { Socket } from 'node:net';

export class WriteCoalescer {
  private corked: Socket[] = [];
  private readonly flush = (): void => {
    const sockets = this.corked;
    if (sockets.length > this.maxPerTurn) {
      this.corked = sockets.slice(this.maxPerTurn);
      sockets.length = this.maxPerTurn;
      setImmediate(this.flush);
    } else {
      this.corked = [];
    }
    for (const socket of sockets) socket.uncork();
  };

  constructor(private readonly maxPerTurn = 256) {}

  /** Call before writing to `socket`; the writes of this tick go out together. */
  hold(socket: Socket | undefined): void {
    if (!socket || socket.writableCorked > 0 || socket.destroyed) return;
    socket.cork();
    if (this.corked.push(socket) === 1) process.nextTick(this.flush);
  }
}
