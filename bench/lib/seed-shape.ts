// The shape of a seeded database, shared by the SQLite and PostgreSQL seeders: who talks to whom
// and how much. Deterministic from a PRNG seed, so two seeds with the same settings hold the same
// conversations and messages in the same order.
//
// - U users `u000001`..; D = 3U direct conversation candidates, each between a user drawn by a
//   Zipf law over users (exponent 0.5: a few users have hundreds of contacts, most a handful) and
//   a uniformly drawn other user;
// - G = U / 50 groups of 3 to 50 members (most small), drawn uniformly;
// - every message picks a group (share `groupShare`) or a direct conversation by a Zipf law over
//   activity (exponent 0.7: the busiest direct conversation gets ~0.7% of all messages, the
//   100th ~0.02%), then a sender among its members;
// - created_at grows with the id, evenly over `spanDays` up to a few minutes before the seed.

/** sfc32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function rng(seed: number): () => number {
  let a = 0x9e3779b9,
    b = 0x243f6a88,
    c = 0xb7e15162,
    d = seed >>> 0;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

/** Draws ranks 0..n-1 with P(k) proportional to 1 / (k + 1)^s (inverse CDF, binary search). */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    total += 1 / Math.pow(k + 1, s);
    cdf[k] = total;
  }
  return () => {
    const u = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export interface ShapeSettings {
  messages: number;
  users: number;
  /** Share of messages sent to groups. */
  groupShare: number;
  spanDays: number;
  seed: number;
}

export const DEFAULT_SHAPE = { groupShare: 0.05, spanDays: 56, seed: 13 };

export const username = (user: number): string => `u${String(user).padStart(6, '0')}`;

/** Conversations 0..direct-1 are direct (a, b), direct..direct+groups-1 are groups. */
export interface Shape {
  direct: number;
  groups: number;
  a: Int32Array;
  b: Int32Array;
  /** Members of each group (user ids, the first is its creator and admin). */
  groupMembers: Int32Array[];
  /** The next message: its conversation index and sender (user id). */
  next(): { conversation: number; sender: number };
  /** Some 100-character text. */
  content(): string;
}

const WORDS =
  'the a to and of you I it in is that for on we this with have be are was at not but what so can me my just do if all about like get your know will how up out now no there one they time good when think see then well here from more our by go day work yes going want ok sure thanks great tomorrow tonight morning later meeting call lunch coffee home back soon maybe right really need still today week let us make sounds plan news weekend train late done send file look nice fine love happy'.split(
    ' ',
  );

export function makeShape(s: ShapeSettings): Shape {
  const random = rng(s.seed);
  const users = s.users;
  const direct = users * 3;
  const groups = Math.max(1, Math.floor(users / 50));
  const a = new Int32Array(direct);
  const b = new Int32Array(direct);
  const pickUser = zipf(users, 0.5, random);
  // A random permutation, so the most active users are not simply the first ids.
  const perm = new Int32Array(users);
  for (let i = 0; i < users; i++) perm[i] = i + 1;
  for (let i = users - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = perm[i] as number;
    perm[i] = perm[j] as number;
    perm[j] = t;
  }
  const seen = new Set<number>();
  for (let k = 0; k < direct; k++) {
    for (;;) {
      const x = perm[pickUser()] as number;
      const y = 1 + Math.floor(random() * users);
      if (x === y) continue;
      const key = Math.min(x, y) * (users + 1) + Math.max(x, y);
      if (seen.has(key)) continue;
      seen.add(key);
      a[k] = x;
      b[k] = y;
      break;
    }
  }
  seen.clear();
  const groupMembers: Int32Array[] = [];
  for (let g = 0; g < groups; g++) {
    const size = Math.min(users, 3 + Math.floor(47 * Math.pow(random(), 3)));
    const members = new Set<number>();
    while (members.size < size) members.add(1 + Math.floor(random() * users));
    groupMembers.push(Int32Array.from(members));
  }
  const pickDirect = zipf(direct, 0.7, random);
  const pickGroup = zipf(groups, 0.7, random);
  let text = '';
  while (text.length < 65_536) text += WORDS[Math.floor(random() * WORDS.length)] + ' ';
  return {
    direct,
    groups,
    a,
    b,
    groupMembers,
    next() {
      if (random() < s.groupShare) {
        const g = pickGroup();
        const members = groupMembers[g] as Int32Array;
        return {
          conversation: direct + g,
          sender: members[Math.floor(random() * members.length)] as number,
        };
      }
      const k = pickDirect();
      return { conversation: k, sender: random() < 0.5 ? (a[k] as number) : (b[k] as number) };
    },
    content() {
      const at = Math.floor(random() * (text.length - 100));
      return text.slice(at, at + 100);
    },
  };
}

/** What a seeded database holds beyond its settings: the users a benchmark should measure with. */
export interface SeedMeta {
  kind: 'sqlite' | 'postgres';
  settings: ShapeSettings;
  /** Events stored: messages plus one 'conversation' event per group. */
  events: number;
  conversations: number;
  seededAt: string;
  seconds: number;
  bytes: number;
  bytesPerMessage: number;
  /** The busiest direct conversations, busiest first, with their two users. */
  topDirect: Array<{ conversationId: number; a: string; b: string; messages: number }>;
  /** Users with the largest streams, with their stream size and number of conversations. */
  topUsers: Array<{ user: string; id: number; stream: number; conversations: number }>;
  /** Users with the most conversations, likewise. */
  mostConversations: Array<{ user: string; id: number; stream: number; conversations: number }>;
}

/** Counts kept while seeding, from which SeedMeta's lists are made. */
export class SeedCounts {
  readonly messages: Int32Array;
  readonly stream: Int32Array;
  readonly conversationsOf: Int32Array;
  constructor(shape: Shape, users: number) {
    this.messages = new Int32Array(shape.direct + shape.groups);
    this.stream = new Int32Array(users + 1);
    this.conversationsOf = new Int32Array(users + 1);
  }

  topDirect(shape: Shape, dbIds: Int32Array, n = 200): SeedMeta['topDirect'] {
    const order = Array.from({ length: shape.direct }, (_, k) => k)
      .filter((k) => (this.messages[k] as number) > 0)
      .sort((x, y) => (this.messages[y] as number) - (this.messages[x] as number))
      .slice(0, n);
    return order.map((k) => ({
      conversationId: dbIds[k] as number,
      a: username(shape.a[k] as number),
      b: username(shape.b[k] as number),
      messages: this.messages[k] as number,
    }));
  }

  /** The users with the largest streams, or with the most conversations. */
  topUsers(by: 'stream' | 'conversations', n = 200): SeedMeta['topUsers'] {
    const key = by === 'stream' ? this.stream : this.conversationsOf;
    const ids = Array.from({ length: this.stream.length - 1 }, (_, i) => i + 1)
      .sort((x, y) => (key[y] as number) - (key[x] as number))
      .slice(0, n);
    return ids.map((id) => ({
      user: username(id),
      id,
      stream: this.stream[id] as number,
      conversations: this.conversationsOf[id] as number,
    }));
  }
}

/** One row of `messages` as the seeders write it. */
export interface EventRow {
  id: number;
  conversationId: number;
  senderId: number;
  /** A direct message's receiver; null in a group. */
  receiverId: number | null;
  kind: 'message' | 'conversation';
  content: string;
  /** ISO time. */
  createdAt: string;
  /** Set while younger than the idempotency window (24 hours), as after the server's prune. */
  clientId: string | null;
  /** A group's creation event: its JSON payload. */
  payload: string | null;
}

export interface ConversationRow {
  id: number;
  kind: 'direct' | 'group';
  directKey: string | null;
  title: string | null;
  createdBy: number | null;
  createdAt: string;
  members: Array<{
    userId: number;
    role: 'admin' | 'member';
    joinedAfter: number;
    readUpTo: number;
    deliveredUpTo: number;
  }>;
}

export interface Sink {
  /** Events in id order; each followed by the inbox rows of its recipients. */
  event(row: EventRow): void;
  inbox(userId: number, messageId: number): void;
}

export interface Generated {
  shape: Shape;
  counts: SeedCounts;
  /** Events written (messages and groups' creation events): the last id. */
  events: number;
  conversations: ConversationRow[];
  /** Conversation index -> id. */
  dbIds: Int32Array;
}

const WINDOW_MS = 24 * 3600_000;

/**
 * Generates the seed's events in id order into `sink` (what the store's append path writes per
 * message, in that order: a group's 'created' event before its first message, then the message,
 * then one inbox row per member), and returns the conversations with their members, in id order,
 * with watermarks at the conversation's last event (one member in five has not read the last
 * message yet). `newId` gives a new client id. It yields the number of messages done after every
 * `chunk` messages and at the end, so that the caller commits (and may wait) in between.
 */
export function* generate(
  s: ShapeSettings,
  chunk: number,
  sink: Sink,
  newId: () => string,
): Generator<number, Generated> {
  const shape = makeShape(s);
  const counts = new SeedCounts(shape, s.users);
  const seedNow = Date.now() - 5 * 60_000;
  const t0 = seedNow - s.spanDays * 86_400_000;
  const windowStart = seedNow - WINDOW_MS;
  const total = shape.direct + shape.groups;
  const dbId = new Int32Array(total); // 0: not created yet
  const created = new Float64Array(total);
  const lastId = new Int32Array(total);
  const prevId = new Int32Array(total);
  const groupEvent = new Int32Array(shape.groups);
  const order: number[] = [];
  let id = 0;
  const inboxOf = (user: number, messageId: number) => {
    sink.inbox(user, messageId);
    counts.stream[user] = (counts.stream[user] as number) + 1;
  };
  for (let i = 0; i < s.messages; i++) {
    const t = t0 + Math.floor(((i + 1) * (seedNow - t0)) / s.messages);
    const at = new Date(t).toISOString();
    const { conversation: c, sender } = shape.next();
    const isGroup = c >= shape.direct;
    if (dbId[c] === 0) {
      order.push(c);
      dbId[c] = order.length;
      created[c] = t;
      if (isGroup) {
        // The group's creation event comes first, as POST /conversations writes it.
        const g = c - shape.direct;
        const members = shape.groupMembers[g] as Int32Array;
        id += 1;
        sink.event({
          id,
          conversationId: dbId[c] as number,
          senderId: members[0] as number,
          receiverId: null,
          kind: 'conversation',
          content: '',
          createdAt: at,
          clientId: null,
          payload: JSON.stringify({
            action: 'created',
            title: `group ${g + 1}`,
            members: Array.from(members, username),
          }),
        });
        groupEvent[g] = id;
        for (const m of members) inboxOf(m, id);
        lastId[c] = id;
      }
    }
    id += 1;
    const receiver = isGroup
      ? null
      : sender === shape.a[c]
        ? (shape.b[c] as number)
        : (shape.a[c] as number);
    sink.event({
      id,
      conversationId: dbId[c] as number,
      senderId: sender,
      receiverId: receiver,
      kind: 'message',
      content: shape.content(),
      createdAt: at,
      clientId: t > windowStart ? newId() : null,
      payload: null,
    });
    if (isGroup) {
      for (const m of shape.groupMembers[c - shape.direct] as Int32Array) inboxOf(m, id);
    } else {
      inboxOf(sender, id);
      inboxOf(receiver as number, id);
    }
    prevId[c] = lastId[c] as number;
    lastId[c] = id;
    counts.messages[c] = (counts.messages[c] as number) + 1;
    if ((i + 1) % chunk === 0 || i + 1 === s.messages) yield i + 1;
  }
  const random = rng(s.seed + 1);
  const conversations: ConversationRow[] = order.map((c) => {
    const at = new Date(created[c] as number).toISOString();
    const last = lastId[c] as number;
    const readMark = () => (random() < 0.2 ? (prevId[c] as number) : last);
    if (c < shape.direct) {
      const x = shape.a[c] as number;
      const y = shape.b[c] as number;
      for (const u of [x, y]) counts.conversationsOf[u] = (counts.conversationsOf[u] as number) + 1;
      return {
        id: dbId[c] as number,
        kind: 'direct',
        directKey: x < y ? `${x}:${y}` : `${y}:${x}`,
        title: null,
        createdBy: null,
        createdAt: at,
        members: [x, y].map((userId) => ({
          userId,
          role: 'member' as const,
          joinedAfter: 0,
          readUpTo: readMark(),
          deliveredUpTo: last,
        })),
      };
    }
    const g = c - shape.direct;
    const members = shape.groupMembers[g] as Int32Array;
    for (const u of members) counts.conversationsOf[u] = (counts.conversationsOf[u] as number) + 1;
    return {
      id: dbId[c] as number,
      kind: 'group',
      directKey: null,
      title: `group ${g + 1}`,
      createdBy: members[0] as number,
      createdAt: at,
      members: Array.from(members, (userId, k) => ({
        userId,
        role: k === 0 ? ('admin' as const) : ('member' as const),
        joinedAfter: (groupEvent[g] as number) - 1,
        readUpTo: readMark(),
        deliveredUpTo: last,
      })),
    };
  });
  return { shape, counts, events: id, conversations, dbIds: dbId };
}
