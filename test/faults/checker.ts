// Judges a fault scenario's history (recorder.ts) against what the server stored, read back after
// the faults (and usually after a restart):
// 1. every acked send is stored exactly once, with the id and createdAt of its ack;
// 2. no send that got only definite errors is stored;
// 3. a send whose outcome is unknown is stored at most once;
// 4. no phantom: every stored message is one that a client sent, byte for byte (content,
//    receiver);
// 5. every observed receiver's live plus replayed plus HTTP-synced messages equal its stream (the
//    messages it sent or received) as stored, each once, and, unless `ordered` is false, first
//    seen in the stream's order.
import type { History, SendAttempt, StoredMessage } from './recorder.js';

export interface CheckOptions {
  /** Users whose view (deliveries) must equal their stored stream; default: none. */
  receivers?: string[];
  /** Deliveries must arrive in id order (default true; false where nodes may reorder). */
  ordered?: boolean;
  /** The clientId a stored message's content names (default: the content up to its first space). */
  clientIdOf?: (content: string) => string;
}

export interface Figures {
  /** Distinct messages (sender and clientId) the clients tried to send. */
  sent: number;
  /** Attempts, retries included. */
  attempts: number;
  acked: number;
  /** Messages that got only definite errors. */
  failed: number;
  /** Messages whose outcome the clients do not know. */
  unknown: number;
  /** Unknown-outcome messages that turned out to be stored. */
  unknownStored: number;
  /** Stored messages of the scenario's users. */
  stored: number;
  /** Acked messages not stored. */
  lost: number;
  /** Messages stored more than once. */
  duplicated: number;
  /** Stored messages no client sent (or whose content changed). */
  phantom: number;
  /** Messages received live, in a replay, and by GET /sync (each delivery, duplicates included). */
  live: number;
  replayed: number;
  synced: number;
}

export interface CheckResult {
  ok: boolean;
  violations: string[];
  figures: Figures;
}

/** Compares decimal ids numerically without Number's precision limit. */
export function compareIds(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

const firstWord = (content: string): string => {
  const space = content.indexOf(' ');
  return space === -1 ? content : content.slice(0, space);
};

/** The fields a StoredMessage names, byte for byte (a frame may carry more, such as its conversation). */
const sameMessage = (a: StoredMessage, b: StoredMessage): boolean =>
  a.id === b.id &&
  a.sender === b.sender &&
  a.receiver === b.receiver &&
  a.content === b.content &&
  a.createdAt === b.createdAt;

const short = (m: StoredMessage): string =>
  `#${m.id} ${m.sender}->${m.receiver} ${JSON.stringify(m.content.slice(0, 40))}`;

interface Op {
  sender: string;
  clientId: string;
  attempts: SendAttempt[];
  outcome: 'ok' | 'fail' | 'info';
}

/** One logical send per (sender, clientId): acked if any attempt was, else unknown if any was. */
function operations(history: History): Map<string, Op> {
  const ops = new Map<string, Op>();
  for (const a of history.sends) {
    const key = `${a.sender}\u0000${a.clientId}`;
    let op = ops.get(key);
    if (!op) {
      op = { sender: a.sender, clientId: a.clientId, attempts: [], outcome: 'fail' };
      ops.set(key, op);
    }
    op.attempts.push(a);
  }
  for (const op of ops.values()) {
    const outcomes = op.attempts.map((a) => a.outcome ?? 'info');
    op.outcome = outcomes.includes('ok') ? 'ok' : outcomes.includes('info') ? 'info' : 'fail';
  }
  return ops;
}

export function check(
  history: History,
  stored: StoredMessage[],
  options: CheckOptions = {},
): CheckResult {
  const violations: string[] = [];
  const clientIdOf = options.clientIdOf ?? firstWord;
  const ops = operations(history);
  const byId = new Map<string, StoredMessage>();
  for (const m of stored) {
    const seen = byId.get(m.id);
    if (seen && JSON.stringify(seen) !== JSON.stringify(m))
      violations.push(
        `id ${m.id} read back as two different messages: ${short(seen)} / ${short(m)}`,
      );
    byId.set(m.id, m);
  }
  const messages = [...byId.values()].sort((a, b) => compareIds(a.id, b.id));

  // Stored messages per operation; the rest are phantoms.
  const storedFor = new Map<Op, StoredMessage[]>();
  let phantom = 0;
  for (const m of messages) {
    const op = ops.get(`${m.sender}\u0000${clientIdOf(m.content)}`);
    const sent = op?.attempts[0];
    if (!op || !sent) {
      phantom += 1;
      violations.push(`phantom: ${short(m)} matches no send`);
      continue;
    }
    if (m.content !== sent.content || m.receiver !== sent.receiver) {
      phantom += 1;
      violations.push(
        `phantom: ${short(m)} is not byte-exact what ${op.sender} sent as ${op.clientId} ` +
          `(to ${sent.receiver}: ${JSON.stringify(sent.content.slice(0, 40))})`,
      );
      continue;
    }
    storedFor.set(op, [...(storedFor.get(op) ?? []), m]);
  }

  let lost = 0;
  let duplicated = 0;
  let unknownStored = 0;
  for (const op of ops.values()) {
    const copies = storedFor.get(op) ?? [];
    const name = `${op.sender}/${op.clientId}`;
    if (new Set(op.attempts.map((a) => a.content)).size > 1)
      violations.push(`${name}: attempts with different contents (a bug in the scenario)`);
    if (copies.length > 1) {
      duplicated += 1;
      violations.push(`duplicated: ${name} stored ${copies.length} times (${copies.map(short)})`);
    }
    if (op.outcome === 'ok') {
      const acks = op.attempts.filter((a) => a.outcome === 'ok');
      const ids = new Set(acks.map((a) => a.id));
      if (ids.size > 1) violations.push(`${name}: acked with different ids ${[...ids]}`);
      const [copy] = copies;
      if (!copy) {
        lost += 1;
        violations.push(`lost: ${name} acked as #${acks[0]?.id} but not stored`);
      } else if (!ids.has(copy.id) || acks.some((a) => a.createdAt !== copy.createdAt)) {
        violations.push(
          `${name}: acked as #${acks[0]?.id} at ${acks[0]?.createdAt}, stored as #${copy.id} at ${copy.createdAt}`,
        );
      }
    } else if (op.outcome === 'fail' && copies.length > 0) {
      violations.push(
        `stored after a definite error: ${name} (${op.attempts.map((a) => a.error)}) is ${short(copies[0]!)}`,
      );
    } else if (op.outcome === 'info' && copies.length > 0) {
      unknownStored += 1;
    }
  }

  // Each observed receiver's view against its stream.
  for (const user of options.receivers ?? []) {
    const stream = messages.filter((m) => m.sender === user || m.receiver === user);
    const got: StoredMessage[] = [];
    const seen = new Set<string>();
    for (const d of history.deliveries) {
      if (d.user !== user) continue;
      const m = d.message;
      const truth = byId.get(m.id);
      if (!truth) {
        violations.push(`${user} got ${short(m)} (${d.via}), which is not stored`);
        continue;
      }
      if (!sameMessage(truth, m))
        violations.push(`${user} got ${short(m)} (${d.via}) but stored is ${short(truth)}`);
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      got.push(m);
    }
    const missing = stream.filter((m) => !seen.has(m.id));
    if (missing.length > 0)
      violations.push(
        `${user} never got ${missing.length} of its ${stream.length} messages, first ${short(missing[0]!)}`,
      );
    if (options.ordered !== false) {
      const i = got.findIndex((m, k) => k > 0 && compareIds(got[k - 1]!.id, m.id) > 0);
      if (i > 0)
        violations.push(`${user} got #${got[i]!.id} after #${got[i - 1]!.id}: out of order`);
    }
  }

  const count = (o: Op['outcome']) => [...ops.values()].filter((op) => op.outcome === o).length;
  const via = (v: string) => history.deliveries.filter((d) => d.via === v).length;
  const figures: Figures = {
    sent: ops.size,
    attempts: history.sends.length,
    acked: count('ok'),
    failed: count('fail'),
    unknown: count('info'),
    unknownStored,
    stored: messages.length,
    lost,
    duplicated,
    phantom,
    live: via('live'),
    replayed: via('replay'),
    synced: via('http'),
  };
  return { ok: violations.length === 0, violations, figures };
}

/** The one line a scenario prints, so that its figures can be quoted. */
export function figuresLine(scenario: string, f: Figures, extra: Record<string, unknown> = {}) {
  const fields = {
    sent: f.sent,
    acked: f.acked,
    lost: f.lost,
    duplicated: f.duplicated,
    failed: f.failed,
    unknown: f.unknown,
    unknownStored: f.unknownStored,
    phantom: f.phantom,
    attempts: f.attempts,
    live: f.live,
    replayed: f.replayed,
    synced: f.synced,
    ...extra,
  };
  return `[fault] ${scenario}: ${Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
}
