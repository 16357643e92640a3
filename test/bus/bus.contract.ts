// The Bus contract: one suite that every Bus implementation must pass. An implementation's test
// file calls `busContract` with a factory of nodes; the cases across nodes run only for a bus
// that can be several nodes (not the in-process one, which is one node by definition).
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, BusEvent } from '../../src/bus/bus.js';

/**
 * `n` buses that behave as `n` nodes of one deployment, fresh for each call (isolated from other
 * calls and other test runs, e.g. by a random channel).
 */
export type OpenNodes = (n: number) => Promise<Bus[]>;

export interface BusCapabilities {
  /** Whether `openNodes(n)` accepts n > 1. */
  multiNode: boolean;
}

/** Polls `condition` until it holds; fails after a generous deadline (a safety net, not a bound). */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  deadlineMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const deliver = (
  id: string,
  exceptConnectionId?: string,
): Extract<BusEvent, { type: 'deliver' }> => ({
  type: 'deliver',
  userIds: ['1', '2'],
  messageId: id,
  frame: JSON.stringify({ type: 'message', id, content: 'héllo "quoted" ✓' }),
  ...(exceptConnectionId ? { exceptConnectionId } : {}),
});

const ids = (events: BusEvent[]) =>
  events.map((e) =>
    e.type === 'deliver'
      ? e.messageId
      : e.type === 'session_revoked'
        ? `revoked:${e.sessionIds.join(',')}`
        : `signal:${e.frame}`,
  );

/** One event of each type and option. */
const everyEventType = (): BusEvent[] => [
  deliver('m1', 'c1'),
  deliver('m2'),
  { ...deliver('m3'), receipt: { conversationId: '9', senderId: '1' } },
  { type: 'signal', userIds: ['2'], frame: '{"type":"typing"}', droppable: true },
  { type: 'signal', userIds: ['1', '3'], frame: '{"type":"receipt"}', exceptConnectionId: 'c2' },
  { type: 'session_revoked', sessionIds: ['s1', 's2'] },
];

/** Every event `bus` hands to a handler, in order. */
function collect(bus: Bus): BusEvent[] {
  const events: BusEvent[] = [];
  bus.subscribe((event) => events.push(event));
  return events;
}

export function busContract(name: string, openNodes: OpenNodes, can: BusCapabilities): void {
  describe(`Bus contract: ${name}`, () => {
    const opened: Bus[] = [];
    const open = async (n: number) => {
      const buses = await openNodes(n);
      opened.push(...buses);
      return buses;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((bus) => bus.close()));
    });

    describe('one node', () => {
      it('runs every local handler inside publish, before it returns, once', async () => {
        const [bus] = await open(1);
        const first = collect(bus!);
        const second = collect(bus!);
        const event = deliver('m1', 'c1');
        const published = bus!.publish(event);
        expect(first).toEqual([event]);
        expect(second).toEqual([event]);
        await published;
        expect(first).toEqual([event]);
      });

      it('hands local handlers one publisher’s events in publish order', async () => {
        const [bus] = await open(1);
        const got = collect(bus!);
        const sent = Array.from({ length: 500 }, (_, i) => `m${i}`);
        const published = sent.map((id) => bus!.publish(deliver(id)));
        expect(ids(got)).toEqual(sent);
        await Promise.all(published);
        expect(ids(got)).toEqual(sent);
      });

      it('carries every event type unchanged', async () => {
        const [bus] = await open(1);
        const got = collect(bus!);
        const events = everyEventType();
        for (const event of events) await bus!.publish(event);
        expect(got).toEqual(events);
      });

      it('stops calling a handler once it is unsubscribed, and only that one', async () => {
        const [bus] = await open(1);
        const kept = collect(bus!);
        const dropped: BusEvent[] = [];
        const unsubscribe = bus!.subscribe((event) => dropped.push(event));
        await bus!.publish(deliver('before'));
        unsubscribe();
        await bus!.publish(deliver('after'));
        expect(ids(dropped)).toEqual(['before']);
        expect(ids(kept)).toEqual(['before', 'after']);
      });

      it('answers ping, describes itself, and can be closed twice', async () => {
        const [bus] = await open(1);
        await expect(bus!.ping()).resolves.toBeUndefined();
        expect(bus!.description).toMatch(/\S/);
        await bus!.close();
        await bus!.close();
      });
    });

    if (!can.multiNode) return;

    describe('several nodes', () => {
      it('gets each event to every node exactly once, without an echo to its publisher', async () => {
        const [a, b, c] = await open(3);
        const [atA, atB, atC] = [collect(a!), collect(b!), collect(c!)];
        const event = deliver('x', 'c1');
        await a!.publish(event);
        await until(() => atB.length > 0 && atC.length > 0, 'x on b and c');
        // A fence: b publishes after it got x, so Redis (or any FIFO transport) has handled x
        // before the fence; an echo of x to a, or a second copy to c, would arrive before it.
        await b!.publish(deliver('fence'));
        await until(() => ids(atA).includes('fence') && ids(atC).includes('fence'), 'the fence');
        expect(atA).toEqual([event, deliver('fence')]);
        expect(atB).toEqual([event, deliver('fence')]);
        expect(atC).toEqual([event, deliver('fence')]);
      });

      it('keeps one publisher’s order on every node (500 events)', async () => {
        const [a, b] = await open(2);
        const [atA, atB] = [collect(a!), collect(b!)];
        const sent = Array.from({ length: 500 }, (_, i) => `m${i}`);
        await Promise.all(sent.map((id) => a!.publish(deliver(id))));
        await until(() => atB.length >= sent.length, '500 events on b');
        await b!.publish(deliver('fence'));
        await until(() => ids(atA).includes('fence'), 'the fence on a');
        expect(ids(atB)).toEqual([...sent, 'fence']);
        expect(ids(atA)).toEqual([...sent, 'fence']);
      });

      it('keeps each publisher’s order when two publish at once', async () => {
        const [a, b, c] = await open(3);
        const atC = collect(c!);
        const fromA = Array.from({ length: 200 }, (_, i) => `a${i}`);
        const fromB = Array.from({ length: 200 }, (_, i) => `b${i}`);
        await Promise.all(
          fromA.flatMap((id, i) => [a!.publish(deliver(id)), b!.publish(deliver(fromB[i]!))]),
        );
        await until(() => atC.length >= 400, '400 events on c');
        expect(ids(atC).filter((id) => id.startsWith('a'))).toEqual(fromA);
        expect(ids(atC).filter((id) => id.startsWith('b'))).toEqual(fromB);
      });

      it('carries every event type unchanged across nodes', async () => {
        const [a, b] = await open(2);
        const atB = collect(b!);
        const events = everyEventType();
        for (const event of events) await a!.publish(event);
        await until(() => atB.length >= events.length, 'the events on b');
        expect(atB).toEqual(events);
      });

      it('stops calling an unsubscribed handler on a remote node', async () => {
        const [a, b] = await open(2);
        const kept = collect(b!);
        const dropped: BusEvent[] = [];
        const unsubscribe = b!.subscribe((event) => dropped.push(event));
        unsubscribe();
        await a!.publish(deliver('x'));
        await a!.publish(deliver('fence'));
        await until(() => ids(kept).includes('fence'), 'the fence on b');
        expect(ids(kept)).toEqual(['x', 'fence']);
        expect(dropped).toEqual([]);
      });

      it('answers ping on every node', async () => {
        const buses = await open(2);
        await Promise.all(buses.map((bus) => expect(bus.ping()).resolves.toBeUndefined()));
      });
    });
  });
}
