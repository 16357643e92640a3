// Coalesces the frames written to a socket within one tick into one syscall: the first frame
// corks the socket and one nextTick uncorks every socket corked since. A batch commit sends
// many acks and deliveries to the same sockets at once; unbatched, `writev` alone was 14% of the
// main thread in the throughput profile.
import type { Socket } from 'node:net';

export class WriteCoalescer {
  private corked: Socket[] = [];
  private readonly flush = (): void => {
    const sockets = this.corked;
    this.corked = [];
    for (const socket of sockets) socket.uncork();
  };

  /** Call before writing to `socket`; the writes of this tick go out together. */
  hold(socket: Socket | undefined): void {
    if (!socket || socket.writableCorked > 0 || socket.destroyed) return;
    socket.cork();
    if (this.corked.push(socket) === 1) process.nextTick(this.flush);
  }
}
