// The soak's accounting (bench/lib/tracker.ts, StreamTracker): every device of a message's two
// users must see it once, its sender as the ack; duplicates, echoes of own messages after a
// resume, misrouted frames, losses and unacked messages are told apart.
import { describe, expect, it } from 'vitest';
import { StreamTracker } from '../../bench/lib/tracker.js';

// 4 devices of 2 users: devices 0 and 2 are user 0's, 1 and 3 user 1's.
const setup = () => new StreamTracker(4, 2, 10, 40);

describe('StreamTracker', () => {
  it('counts a message seen once by each device of both users as delivered, nothing lost', () => {
    const t = setup();
    const k = t.schedule(0, 1, 1000);
    expect(t.content(k)).toHaveLength(40);
    expect(t.content(k).startsWith(`${t.clientId(k)}|`)).toBe(true);
    expect(t.outstanding()).toBe(4);
    expect(t.onAck(0, t.clientId(k))).toEqual({ outcome: 'new', k });
    for (const device of [1, 2, 3]) {
      expect(t.onMessage(device, t.content(k))).toEqual({ outcome: 'new', k });
    }
    expect(t.outstanding()).toBe(0);
    const a = t.accounting(() => 0);
    expect(a).toMatchObject({ messages: 1, expectedDeliveries: 4, seenDeliveries: 4, lost: 0 });
    expect(a.unacked).toBe(0);
  });

  it('tells a duplicate frame or ack from an own message echoed by a replay', () => {
    const t = setup();
    const k = t.schedule(0, 1, 1000);
    // The sender resumed before its ack came: its own message arrives as a frame first (echo),
    // then the resend gets the original ack (not a duplicate).
    expect(t.onMessage(0, t.content(k)).outcome).toBe('echo');
    expect(t.onAck(0, t.clientId(k)).outcome).toBe('new');
    expect(t.onMessage(0, t.content(k)).outcome).toBe('duplicate');
    expect(t.onAck(0, t.clientId(k)).outcome).toBe('duplicate');
    expect(t.onMessage(1, t.content(k)).outcome).toBe('new');
    expect(t.onMessage(1, t.content(k)).outcome).toBe('duplicate');
    expect(t.ownEchoes).toBe(1);
    expect(t.duplicateFrames).toBe(2);
    expect(t.duplicateAcks).toBe(1);
    // Two devices saw it, each counted once.
    expect(t.accounting(() => 0).seenDeliveries).toBe(2);
  });

  it('counts misrouted frames and acks, and what is lost or unacked, by bucket', () => {
    const t = setup();
    const early = t.schedule(1, 0, 1000);
    const late = t.schedule(2, 1, 61_000);
    expect(t.senderOf(late)).toBe(2);
    // An ack at a device that did not send it, and content that names no message.
    expect(t.onAck(3, t.clientId(early)).outcome).toBe('misrouted');
    expect(t.onMessage(0, 'nothing of ours|xxxx').outcome).toBe('misrouted');
    // `early` reaches its sender and one receiver device; `late` is never acked nor delivered.
    t.onAck(1, t.clientId(early));
    t.onMessage(0, t.content(early));
    expect(t.misrouted).toBe(2);
    const a = t.accounting((ref) => Math.floor(ref / 60_000));
    expect(a.expectedDeliveries).toBe(8);
    expect(a.seenDeliveries).toBe(2);
    expect(a.lost).toBe(6);
    expect(a.unacked).toBe(1);
    expect([...a.lostByBucket]).toEqual([
      [0, 2],
      [1, 4],
    ]);
  });

  it('marks messages sent late so that they are not timed', () => {
    const t = setup();
    const k = t.schedule(0, 1, 5);
    expect(t.ref(k)).toBe(5);
    expect(t.isLate(k)).toBe(false);
    t.markLate(k);
    expect(t.isLate(k)).toBe(true);
    expect(t.senderOf(k)).toBe(0);
    expect(t.receiverOf(k)).toBe(1);
  });
});
