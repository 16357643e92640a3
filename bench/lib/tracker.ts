// Accounting of every message of a run: each is known by its clientId `<tag><pair>.<seq>`, which
// the content repeats (`<clientId>|xxxx...`), so acks and deliveries can be matched, counted
// once, checked for order per pair, and timed against a reference (send or scheduled) time.
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
