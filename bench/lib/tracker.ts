// Accounting of every message of a run: each is known by its clientId `<tag><pair>.<seq>`, which
// the content repeats (`<clientId>|xxxx...`), so acks and deliveries can be matched, counted
// once, checked for order per pair, and timed against a reference (send or scheduled) time.
// Tracker does it for sender/receiver pairs, GroupTracker for groups (`<tag><group>.<seq>`, one
// delivery expected per member but the sender), StreamTracker for the soak's devices of users
// across resumes (`<tag><k>`, once per device of the sender and of the receiver).
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

/**
 * Accounting of a soak: D devices (connections) of U users, device d belongs to user d mod U.
 * Each message k, sent by a device to a user, belongs to two streams (its sender's and its
 * receiver's), and every device of those two users must see it exactly once: the sending device
 * as its ack, every other device as a `message` frame (live or replayed after a resume). The
 * content carries the clientId (`<tag><k>|xxxx...`). An own message that comes back as a frame
 * (after a resume) is expected by the protocol: counted as an echo, not a duplicate.
 */
export class StreamTracker {
  /** Messages scheduled so far. */
  count = 0;
  duplicateAcks = 0;
  duplicateFrames = 0;
  misrouted = 0;
  ownEchoes = 0;
  private senderDevice: Int32Array;
  private receiverUserOf: Int32Array;
  /** Position of each message in its sender's and in its receiver's stream. */
  private senderPos: Int32Array;
  private receiverPos: Int32Array;
  private refs: Float64Array;
  /** Bit 1: sent late (held while away, or resent); bit 2: acked. */
  private flags: Uint8Array;
  /** Devices that saw each message. */
  private seen: Uint16Array;
  /** Per device, per position in its user's stream: bit 1 acked there, bit 2 got as a frame. */
  private deviceFlags: Uint8Array[];
  private readonly streamLength: Int32Array;
  private readonly tag = `s${runs++}_${Date.now().toString(36)}_`;
  private readonly padding: string;

  constructor(
    readonly devices: number,
    readonly users: number,
    expectedMessages: number,
    private readonly size: number,
  ) {
    const n = Math.max(1024, expectedMessages + 1);
    this.senderDevice = new Int32Array(n);
    this.receiverUserOf = new Int32Array(n);
    this.senderPos = new Int32Array(n);
    this.receiverPos = new Int32Array(n);
    this.refs = new Float64Array(n);
    this.flags = new Uint8Array(n);
    this.seen = new Uint16Array(n);
    this.deviceFlags = Array.from({ length: devices }, () => new Uint8Array(64));
    this.streamLength = new Int32Array(users);
    this.padding = 'x'.repeat(size);
  }

  userOf(device: number): number {
    return device % this.users;
  }

  devicesOf(user: number): number {
    return Math.floor(this.devices / this.users) + (user < this.devices % this.users ? 1 : 0);
  }

  clientId(k: number): string {
    return `${this.tag}${k}`;
  }

  content(k: number): string {
    const head = `${this.clientId(k)}|`;
    return head.length >= this.size ? head : head + this.padding.slice(head.length);
  }

  senderOf(k: number): number {
    return this.senderDevice[k] as number;
  }

  receiverOf(k: number): number {
    return this.receiverUserOf[k] as number;
  }

  /** Scheduled send time (the reference for latency). */
  ref(k: number): number {
    return this.refs[k] as number;
  }

  isLate(k: number): boolean {
    return ((this.flags[k] as number) & 1) !== 0;
  }

  markLate(k: number): void {
    this.flags[k]! |= 1;
  }

  /** A new message from `device` to `receiver` (a user), scheduled at `ref`; returns its k. */
  schedule(device: number, receiver: number, ref: number): number {
    if (this.count >= this.refs.length) this.grow(this.refs.length * 2);
    const k = this.count++;
    const sender = this.userOf(device);
    this.senderDevice[k] = device;
    this.receiverUserOf[k] = receiver;
    this.senderPos[k] = this.streamLength[sender]!++;
    this.receiverPos[k] = this.streamLength[receiver]!++;
    this.refs[k] = ref;
    return k;
  }

  /** An ack at `device`: 'new' (its k in `.k`), 'duplicate' or 'misrouted'. */
  onAck(
    device: number,
    clientId: unknown,
  ): { outcome: 'new' | 'duplicate' | 'misrouted'; k: number } {
    const k = this.parse(clientId);
    if (k < 0 || this.senderDevice[k] !== device) {
      this.misrouted += 1;
      return { outcome: 'misrouted', k };
    }
    this.flags[k]! |= 2;
    const flags = this.at(device, this.senderPos[k] as number);
    const v = flags.array[flags.pos] as number;
    if (v & 1) {
      this.duplicateAcks += 1;
      return { outcome: 'duplicate', k };
    }
    flags.array[flags.pos] = v | 1;
    if (v === 0) this.seen[k]! += 1;
    return { outcome: 'new', k };
  }

  /**
   * A `message` frame at `device`: 'new' (first time, someone else's message: the k is in
   * `.k`), 'echo' (its own message back), 'duplicate' or 'misrouted'.
   */
  onMessage(
    device: number,
    content: unknown,
  ): { outcome: 'new' | 'echo' | 'duplicate' | 'misrouted'; k: number } {
    const text = typeof content === 'string' ? content : '';
    const k = this.parse(text.slice(0, text.indexOf('|')));
    if (k < 0) {
      this.misrouted += 1;
      return { outcome: 'misrouted', k };
    }
    const user = this.userOf(device);
    const senderDevice = this.senderDevice[k] as number;
    let pos: number;
    if (this.userOf(senderDevice) === user) pos = this.senderPos[k] as number;
    else if (this.receiverUserOf[k] === user) pos = this.receiverPos[k] as number;
    else {
      this.misrouted += 1;
      return { outcome: 'misrouted', k };
    }
    const flags = this.at(device, pos);
    const v = flags.array[flags.pos] as number;
    if (v & 2) {
      this.duplicateFrames += 1;
      return { outcome: 'duplicate', k };
    }
    flags.array[flags.pos] = v | 2;
    if (v === 0) this.seen[k]! += 1;
    if (senderDevice === device) {
      this.ownEchoes += 1;
      return { outcome: 'echo', k };
    }
    return { outcome: 'new', k };
  }

  /** Deliveries (acks at the sender included) still expected. */
  outstanding(): number {
    let want = 0;
    let got = 0;
    for (let k = 0; k < this.count; k++) {
      want += this.expected(k);
      got += this.seen[k] as number;
    }
    return want - got;
  }

  /** Expected, seen and lost deliveries, unacked messages; lost also by bucket(ref) (a minute). */
  accounting(bucket: (ref: number) => number): {
    messages: number;
    expectedDeliveries: number;
    seenDeliveries: number;
    lost: number;
    unacked: number;
    lostByBucket: Map<number, number>;
  } {
    let expected = 0;
    let seen = 0;
    let unacked = 0;
    const lostByBucket = new Map<number, number>();
    for (let k = 0; k < this.count; k++) {
      const want = this.expected(k);
      const got = this.seen[k] as number;
      expected += want;
      seen += got;
      if (((this.flags[k] as number) & 2) === 0) unacked += 1;
      if (got < want) {
        const b = bucket(this.refs[k] as number);
        lostByBucket.set(b, (lostByBucket.get(b) ?? 0) + want - got);
      }
    }
    return {
      messages: this.count,
      expectedDeliveries: expected,
      seenDeliveries: seen,
      lost: expected - seen,
      unacked,
      lostByBucket,
    };
  }

  private expected(k: number): number {
    return (
      this.devicesOf(this.userOf(this.senderDevice[k] as number)) +
      this.devicesOf(this.receiverUserOf[k] as number)
    );
  }

  private at(device: number, pos: number): { array: Uint8Array; pos: number } {
    let array = this.deviceFlags[device] as Uint8Array;
    if (pos >= array.length) {
      let size = array.length;
      while (size <= pos) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(array);
      this.deviceFlags[device] = grown;
      array = grown;
    }
    return { array, pos };
  }

  private parse(clientId: unknown): number {
    if (typeof clientId !== 'string' || !clientId.startsWith(this.tag)) return -1;
    const k = Number(clientId.slice(this.tag.length));
    return Number.isInteger(k) && k >= 0 && k < this.count ? k : -1;
  }

  private grow(size: number): void {
    const g = <T extends Int32Array | Float64Array | Uint8Array | Uint16Array>(
      old: T,
      fresh: T,
    ) => {
      fresh.set(old);
      return fresh;
    };
    this.senderDevice = g(this.senderDevice, new Int32Array(size));
    this.receiverUserOf = g(this.receiverUserOf, new Int32Array(size));
    this.senderPos = g(this.senderPos, new Int32Array(size));
    this.receiverPos = g(this.receiverPos, new Int32Array(size));
    this.refs = g(this.refs, new Float64Array(size));
    this.flags = g(this.flags, new Uint8Array(size));
    this.seen = g(this.seen, new Uint16Array(size));
  }
}
