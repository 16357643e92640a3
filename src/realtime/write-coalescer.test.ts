import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WriteCoalescer } from './write-coalescer.js';

/** Just what the coalescer touches of a socket: cork, uncork and their count. */
function fakeSocket(log: number[], id: number): Socket {
  const s = {
    writableCorked: 0,
    destroyed: false,
    cork: () => void (s.writableCorked += 1),
    uncork: () => {
      s.writableCorked -= 1;
      log.push(id);
    },
  };
  return s as unknown as Socket;
}

const tick = () => new Promise<void>((resolve) => process.nextTick(resolve));
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WriteCoalescer', () => {
  it('uncorks every socket held in a tick once, on the next tick', async () => {
    const log: number[] = [];
    const c = new WriteCoalescer(4);
    const sockets = [0, 1, 2].map((i) => fakeSocket(log, i));
    for (const s of [...sockets, sockets[0]!, sockets[1]!]) c.hold(s);
    expect(sockets.map((s) => s.writableCorked)).toEqual([1, 1, 1]);
    await tick();
    expect(log).toEqual([0, 1, 2]);
    expect(sockets.map((s) => s.writableCorked)).toEqual([0, 0, 0]);
  });

  it('spreads a burst over turns of the event loop, at most maxPerTurn a turn, in order', async () => {
    const log: number[] = [];
    const c = new WriteCoalescer(4);
    const sockets = Array.from({ length: 10 }, (_, i) => fakeSocket(log, i));
    for (const s of sockets) c.hold(s);
    await tick();
    expect(log).toEqual([0, 1, 2, 3]);
    // Held again while still corked: not twice in the queue; a new one joins the end.
    c.hold(sockets[5]!);
    const late = fakeSocket(log, 10);
    c.hold(late);
    await turn();
    expect(log).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await turn();
    expect(log).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect([...sockets, late].every((s) => s.writableCorked === 0)).toBe(true);
    // Empty again: the next hold uncorks on the next tick.
    c.hold(sockets[0]!);
    await tick();
    expect(log.at(-1)).toBe(0);
  });
});
