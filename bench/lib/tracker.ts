// Accounting of every message of a run: each is known by its clientId `<tag><pair>.<seq>`, which
// the content repeats (`<clientId>|xxxx...`), so acks and deliveries can be matched, counted
// once, checked for order per pair, and timed against a reference (send or scheduled) time.
// Tracker does it for sender/receiver pairs, GroupTracker for groups (`<tag><group>.<seq>`, one
// delivery expected per member but the sender).
import { histogram, recordMs, summarize, type Latency } from './stats.js';

export interface Accounting {
  sent: number;
  acked: number;
  delivered: number;
  /** Sent but never delivered (after the drain). */
  lost: number;
  /** Sent but never acked (after the drain). */
  unacked: number;
  duplicateAcks: number;
  duplicateDeliveries: number;
  /** Deliveries to the wrong receiver, or with content that names no sent message. */
  misrouted: number;
  /** Deliveries of a pair that came after a later message of the same pair. */
  reordered: number;
  /** Error frames by code. */
  errors: Record<string, number>;
}

class Growable {
  times = new Float64Array(64);
  acks = new Uint8Array(64);
  deliveries = new Uint8Array(64);
  ensure(seq: number): void {
    if (seq < this.times.length) return;
    let size = this.times.length;
    while (size <= seq) size *= 2;
    const times = new Float64Array(size);
    times.set(this.times);
    const acks = new Uint8Array(size);
    acks.set(this.acks);
    const deliveries = new Uint8Array(size);
    deliveries.set(this.deliveries);
    this.times = times;
    this.acks = acks;
    this.deliveries = deliveries;
  }
}

/** Runs in this process so far: makes every run's clientIds new to the peer. */
let runs = 0;

export class Tracker {
  readonly ackLatency = histogram();
  readonly deliveryLatency = histogram();
  /** Measurement window [start, end) in performance.now() milliseconds. */
  windowStart = Infinity;
  windowEnd = Infinity;
  private readonly perPair: Growable[];
  private readonly lastDelivered: Int32Array;
  private readonly padding: string;
  private sent = 0;
  private acked = 0;
  private delivered = 0;
  private duplicateAcks = 0;
  private duplicateDeliveries = 0;
  private misrouted = 0;
  private reordered = 0;
  private refused = 0;
  private readonly errors: Record<string, number> = {};
  /** Counted when they happen inside the window (throughput). */
  deliveredInWindow = 0;
  ackedInWindow = 0;
  sentInWindow = 0;

  /** `<letter><run>_`: a chat server acks a reused clientId again without delivering it. */
  private readonly tag: string;

  constructor(
    letter: string,
    pairs: number,
    private readonly size: number,
  ) {
    this.tag = `${letter}${runs++}_`;
    this.perPair = Array.from({ length: pairs }, () => new Growable());
    this.lastDelivered = new Int32Array(pairs).fill(-1);
    this.padding = 'x'.repeat(size);
  }

  clientId(pair: number, seq: number): string {
    return `${this.tag}${pair}.${seq}`;
  }

  /** `size` characters: the clientId, a bar, padding. */
  content(clientId: string): string {
    const head = `${clientId}|`;
    return head.length >= this.size ? head : head + this.padding.slice(head.length);
  }

  /** Acks and deliveries still expected (a refused message expects neither). */
  get outstanding(): number {
    return (this.sent - this.refused) * 2 - this.acked - this.delivered;
  }

  /** `ref` is the time latencies are measured from: the send, or the scheduled send. */
  markSent(pair: number, seq: number, ref: number): void {
    const p = this.perPair[pair] as Growable;
    p.ensure(seq);
    p.times[seq] = ref;
    this.sent += 1;
    if (ref >= this.windowStart && ref < this.windowEnd) this.sentInWindow += 1;
  }

  /** Returns the pair of the acked message, or -1 if the ack names no sent message. */
  onAck(clientId: unknown, now: number): number {
    const at = this.parse(clientId);
    if (!at) {
      this.misrouted += 1;
      return -1;
    }
    const p = this.perPair[at.pair] as Growable;
    if (p.acks[at.seq]! > 0) {
      this.duplicateAcks += 1;
      return -1;
    }
    p.acks[at.seq] = 1;
    this.acked += 1;
    if (now >= this.windowStart && now < this.windowEnd) this.ackedInWindow += 1;
    const ref = p.times[at.seq] as number;
    if (ref >= this.windowStart && ref < this.windowEnd) recordMs(this.ackLatency, now - ref);
    return at.pair;
  }

  /** A message frame received by the receiver of `pair`. */
  onDelivery(pair: number, content: unknown, now: number): void {
    const clientId = typeof content === 'string' ? content.slice(0, content.indexOf('|')) : '';
    const at = this.parse(clientId);
    if (!at || at.pair !== pair) {
      this.misrouted += 1;
      return;
    }
    const p = this.perPair[pair] as Growable;
    if (p.deliveries[at.seq]! > 0) {
      this.duplicateDeliveries += 1;
      return;
    }
    p.deliveries[at.seq] = 1;
    this.delivered += 1;
    if (at.seq < (this.lastDelivered[pair] as number)) this.reordered += 1;
    else this.lastDelivered[pair] = at.seq;
    if (now >= this.windowStart && now < this.windowEnd) this.deliveredInWindow += 1;
    const ref = p.times[at.seq] as number;
    if (ref >= this.windowStart && ref < this.windowEnd) recordMs(this.deliveryLatency, now - ref);
  }

  /** An error frame; returns the pair it names, or -1. Its message counts as unacked. */
  onError(code: string, clientId: unknown): number {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    const at = this.parse(clientId);
    if (at) this.refused += 1;
    return at?.pair ?? -1;
  }

  accounting(): Accounting {
    return {
      sent: this.sent,
      acked: this.acked,
      delivered: this.delivered,
      lost: this.sent - this.delivered,
      unacked: this.sent - this.acked,
      duplicateAcks: this.duplicateAcks,
      duplicateDeliveries: this.duplicateDeliveries,
      misrouted: this.misrouted,
      reordered: this.reordered,
      errors: { ...this.errors },
    };
  }

  latencies(): { ack: Latency; delivery: Latency } {
    return { ack: summarize(this.ackLatency), delivery: summarize(this.deliveryLatency) };
  }

  private parse(clientId: unknown): { pair: number; seq: number } | undefined {
    if (typeof clientId !== 'string' || !clientId.startsWith(this.tag)) return undefined;
    const dot = clientId.indexOf('.');
    if (dot < 0) return undefined;
    const pair = Number(clientId.slice(this.tag.length, dot));
    const seq = Number(clientId.slice(dot + 1));
    const p = this.perPair[pair];
    if (!p || !Number.isInteger(seq) || seq < 0 || seq >= p.times.length || p.times[seq] === 0) {
      return undefined;
    }
    return { pair, seq };
  }
}

/** Per message of one group: reference time, ack flag, number of members that got it. */
class GroupMessages {
  times = new Float64Array(64);
  acks = new Uint8Array(64);
  reached = new Uint16Array(64);
  ensure(seq: number): void {
    if (seq < this.times.length) return;
    let size = this.times.length;
    while (size <= seq) size *= 2;
    const grow = <T extends Float64Array | Uint8Array | Uint16Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.times = grow(this.times, new Float64Array(size));
    this.acks = grow(this.acks, new Uint8Array(size));
    this.reached = grow(this.reached, new Uint16Array(size));
  }
}

/** Which messages of its group one member got (indexed by seq). */
class Seen {
  flags = new Uint8Array(64);
  /** Sets the flag; false if it was set already. */
  mark(seq: number): boolean {
    if (seq >= this.flags.length) {
      let size = this.flags.length;
      while (size <= seq) size *= 2;
      const flags = new Uint8Array(size);
      flags.set(this.flags);
      this.flags = flags;
    }
    if (this.flags[seq] === 1) return false;
    this.flags[seq] = 1;
    return true;
  }
}

/**
 * Accounting of a group run: G groups of S members, member 0 of each sends. Each message
 * (`<tag><group>.<seq>`, repeated in the content) is expected once at each of the other S - 1
 * members: `delivered` and `lost` count those deliveries, `sent`, `acked` and `unacked` count
 * messages. A delivery to the sender, to a member of another group, or of content that names no
 * sent message is misrouted; one that comes after a later message of the same group, at the same
 * member, is reordered.
 */
export class GroupTracker {
  readonly ackLatency = histogram();
  /** From the reference time to each member's receipt. */
  readonly deliveryLatency = histogram();
  /** From the reference time to the receipt by the last of the S - 1 members. */
  readonly lastMemberLatency = histogram();
  windowStart = Infinity;
  windowEnd = Infinity;
  deliveredInWindow = 0;
  sentInWindow = 0;
  private readonly messages: GroupMessages[];
  /** [group][member]: what that member got, and the last seq it got. */
  private readonly seen: Seen[][];
  private readonly last: Int32Array[];
  private readonly padding: string;
  private readonly tag: string;
  private readonly receivers: number;
  private sent = 0;
  private acked = 0;
  private delivered = 0;
  private duplicateAcks = 0;
  private duplicateDeliveries = 0;
  private misrouted = 0;
  private reordered = 0;
  private refused = 0;
  private readonly errors: Record<string, number> = {};

  constructor(
    letter: string,
    readonly groups: number,
    readonly members: number,
    private readonly size: number,
  ) {
    this.tag = `${letter}${runs++}_`;
    this.receivers = members - 1;
    this.messages = Array.from({ length: groups }, () => new GroupMessages());
    this.seen = Array.from({ length: groups }, () =>
      Array.from({ length: members }, () => new Seen()),
    );
    this.last = Array.from({ length: groups }, () => new Int32Array(members).fill(-1));
    this.padding = 'x'.repeat(size);
  }

  clientId(group: number, seq: number): string {
    return `${this.tag}${group}.${seq}`;
  }

  content(clientId: string): string {
    const head = `${clientId}|`;
    return head.length >= this.size ? head : head + this.padding.slice(head.length);
  }

  /** Acks and deliveries still expected (a refused message expects neither). */
  get outstanding(): number {
    return (this.sent - this.refused) * (1 + this.receivers) - this.acked - this.delivered;
  }

  markSent(group: number, seq: number, ref: number): void {
    const m = this.messages[group] as GroupMessages;
    m.ensure(seq);
    m.times[seq] = ref;
    this.sent += 1;
    if (ref >= this.windowStart && ref < this.windowEnd) this.sentInWindow += 1;
  }

  onAck(clientId: unknown, now: number): void {
    const at = this.parse(clientId);
    if (!at) {
      this.misrouted += 1;
      return;
    }
    const m = this.messages[at.group] as GroupMessages;
    if (m.acks[at.seq]! > 0) {
      this.duplicateAcks += 1;
      return;
    }
    m.acks[at.seq] = 1;
    this.acked += 1;
    const ref = m.times[at.seq] as number;
    if (ref >= this.windowStart && ref < this.windowEnd) recordMs(this.ackLatency, now - ref);
  }

  /** A message frame received by member `member` (0 is the sender) of group `group`. */
  onDelivery(group: number, member: number, content: unknown, now: number): void {
    const clientId = typeof content === 'string' ? content.slice(0, content.indexOf('|')) : '';
    const at = this.parse(clientId);
    if (!at || at.group !== group || member === 0) {
      this.misrouted += 1;
      return;
    }
    if (!(this.seen[group]![member] as Seen).mark(at.seq)) {
      this.duplicateDeliveries += 1;
      return;
    }
    this.delivered += 1;
    const last = this.last[group] as Int32Array;
    if (at.seq < (last[member] as number)) this.reordered += 1;
    else last[member] = at.seq;
    if (now >= this.windowStart && now < this.windowEnd) this.deliveredInWindow += 1;
    const m = this.messages[group] as GroupMessages;
    const reached = (m.reached[at.seq] as number) + 1;
    m.reached[at.seq] = reached;
    const ref = m.times[at.seq] as number;
    if (ref >= this.windowStart && ref < this.windowEnd) {
      recordMs(this.deliveryLatency, now - ref);
      if (reached === this.receivers) recordMs(this.lastMemberLatency, now - ref);
    }
  }

  onError(code: string, clientId: unknown): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    if (this.parse(clientId)) this.refused += 1;
  }

  /** `sent`, `acked`, `unacked` count messages; `delivered`, `lost` count member deliveries. */
  accounting(): Accounting & { expectedDeliveries: number } {
    const expected = this.sent * this.receivers;
    return {
      sent: this.sent,
      acked: this.acked,
      delivered: this.delivered,
      expectedDeliveries: expected,
      lost: expected - this.delivered,
      unacked: this.sent - this.acked,
      duplicateAcks: this.duplicateAcks,
      duplicateDeliveries: this.duplicateDeliveries,
      misrouted: this.misrouted,
      reordered: this.reordered,
      errors: { ...this.errors },
    };
  }

  latencies(): { ack: Latency; delivery: Latency; lastMember: Latency } {
    return {
      ack: summarize(this.ackLatency),
      delivery: summarize(this.deliveryLatency),
      lastMember: summarize(this.lastMemberLatency),
    };
  }

  private parse(clientId: unknown): { group: number; seq: number } | undefined {
    if (typeof clientId !== 'string' || !clientId.startsWith(this.tag)) return undefined;
    const dot = clientId.indexOf('.');
    if (dot < 0) return undefined;
    const group = Number(clientId.slice(this.tag.length, dot));
    const seq = Number(clientId.slice(dot + 1));
    const m = this.messages[group];
    if (!m || !Number.isInteger(seq) || seq < 0 || seq >= m.times.length || m.times[seq] === 0) {
      return undefined;
    }
    return { group, seq };
  }
}
