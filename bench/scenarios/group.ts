// Scenario 5, groups: U users online, one connection each; for each group size S in turn,
// floor(U / S) disjoint groups of S members whose first member sends, on an open loop (like
// scenario 2: a fixed schedule, latency from the SCHEDULED send time). The rate is given in
// deliveries per second, so every size offers the same delivery work: S - 1 members get each
// message, and the send rate is rate / (S - 1) messages/s in total, round-robin over the groups.
// Reports deliveries/s in the window, delivery latency to each member and to the last member of
// each message, the server's CPU per delivery, and the accounting of every delivery.
import type { ClientConnection, Identity } from '../lib/drivers.js';
import { pool } from '../lib/http.js';
import type { Peer } from '../lib/peers.js';
import { CpuMeter, OtherCpuMeter, round, sleep } from '../lib/proc.js';
import { histogram, recordMs, summarize, type Latency } from '../lib/stats.js';
import { GroupTracker, type Accounting } from '../lib/tracker.js';
import { commitStats, type CommitStats } from './throughput.js';

export interface GroupSettings {
  /** Members per group, sender included; run in this order on the same connections. */
  sizes: number[];
  /** Users online (one connection each). */
  users: number;
  /** Deliveries per second offered, for every size. */
  rate: number;
  /** Characters of content per message. */
  size: number;
  warmupSec: number;
  durationSec: number;
  drainSec: number;
}

export interface GroupResult {
  /** Members per group (S), sender included. */
  members: number;
  groups: number;
  /** Messages per second scheduled, over all groups. */
  sendRate: number;
  offeredDeliveriesPerSec: number;
  warmupSec: number;
  sentPerSec: number;
  deliveredPerSec: number;
  /** From the scheduled send time to each member's receipt. */
  delivery: Latency;
  /** From the scheduled send time to the receipt by the last member of the message. */
  lastMember: Latency;
  ack: Latency;
  sendLag: Latency;
  accounting: Accounting & { expectedDeliveries: number };
  drainSec: number;
  serverCpu: { cpuSec: number; pct: number };
  /** Server CPU over the window divided by the deliveries in it, in microseconds. */
  serverCpuUsPerDelivery: number;
  generatorCpu: { cpuSec: number; pct: number };
  otherCpu: { pct: number };
  commits?: CommitStats;
}

export interface GroupRound {
  settings: GroupSettings;
  /** Seconds to create the groups (first round only) and open and join the connections. */
  setupSec: number;
  bySize: GroupResult[];
  unexpectedCloses: number;
  /** Frames that arrived between two sizes (after a drain that timed out). */
  strays: number;
}

/**
 * The chat server pushes presence to a user's contacts PRESENCE_COALESCE_MS (2 s) after their
 * first connection opens: with 100 users in one group that is ~10,000 frames, which must fall in
 * the warm-up, not in the measured window. The first size's warm-up lasts at least this long
 * after the last connection opened.
 */
const PRESENCE_ALLOWANCE_SEC = 2.5;

/**
 * `users` are the group members (the same identities every round); `cache` keeps each size's
 * conversation ids for this peer, so that groups are created once, at the first round.
 */
export async function groupScenario(
  peer: Peer,
  users: Identity[],
  cache: Map<number, string[]>,
  s: GroupSettings,
): Promise<GroupRound> {
  const createGroup = peer.createGroup?.bind(peer);
  if (!createGroup) throw new Error(`${peer.name} has no groups`);
  if (users.length < s.users) throw new Error(`${users.length} group users, ${s.users} wanted`);
  const setupStart = performance.now();
  for (const size of s.sizes) {
    if (cache.has(size)) continue;
    const count = Math.floor(s.users / size);
    const ids: string[] = new Array(count);
    await pool(count, 4, async (g) => {
      const members = users.slice(g * size, (g + 1) * size);
      ids[g] = await createGroup(members[0]!, `bench ${size} #${g}`, members.slice(1));
    });
    cache.set(size, ids);
  }

  let current: { tracker: GroupTracker; members: number } | undefined;
  let strays = 0;
  let closing = false;
  let closes = 0;
  const conns: ClientConnection[] = new Array(s.users);
  const done = async () => {
    closing = true;
    for (const c of conns) c?.close();
  };
  try {
    await pool(s.users, 20, async (i) => {
      conns[i] = await peer.driver.connect(users[i] as Identity, {
        ack: (clientId) => {
          if (current) current.tracker.onAck(clientId, performance.now());
          else strays += 1;
        },
        message: (content) => {
          if (!current) {
            strays += 1;
            return;
          }
          const { tracker, members } = current;
          const group = Math.floor(i / members);
          // A user left out of every group of this size (U not a multiple of S) gets group -1.
          tracker.onDelivery(
            group < tracker.groups ? group : -1,
            i % members,
            content,
            performance.now(),
          );
        },
        error: (code, clientId) => {
          if (current) current.tracker.onError(code, clientId);
          else strays += 1;
        },
        close: () => {
          if (!closing) closes += 1;
        },
      });
      for (const size of s.sizes) {
        const id = cache.get(size)?.[Math.floor(i / size)];
        if (id !== undefined) await conns[i]!.join(id);
      }
    });
  } catch (error) {
    await done();
    throw error;
  }
  const connectedAt = performance.now();
  const setupSec = round((connectedAt - setupStart) / 1000, 2);

  const bySize: GroupResult[] = [];
  try {
    for (const [index, members] of s.sizes.entries()) {
      const ids = cache.get(members) as string[];
      const tracker = new GroupTracker('g', ids.length, members, s.size);
      current = { tracker, members };
      const sinceConnected = (performance.now() - connectedAt) / 1000;
      const warmupSec =
        index === 0 ? Math.max(s.warmupSec, PRESENCE_ALLOWANCE_SEC - sinceConnected) : s.warmupSec;
      bySize.push(await runSize(peer, conns, ids, tracker, { ...s, warmupSec }));
      current = undefined;
    }
  } finally {
    await done();
  }
  return { settings: s, setupSec, bySize, unexpectedCloses: closes, strays };
}

async function runSize(
  peer: Peer,
  conns: ClientConnection[],
  ids: string[],
  tracker: GroupTracker,
  s: GroupSettings,
): Promise<GroupResult> {
  const members = tracker.members;
  const groups = ids.length;
  const sendRate = s.rate / (members - 1);
  const interval = 1000 / sendRate;
  const total = Math.ceil(sendRate * (s.warmupSec + s.durationSec));
  const lag = histogram();
  const start = performance.now() + 20;
  tracker.windowStart = start + s.warmupSec * 1000;
  tracker.windowEnd = tracker.windowStart + s.durationSec * 1000;
  let k = 0;
  let measuring: { server: CpuMeter; generator: CpuMeter; other: OtherCpuMeter } | undefined;
  let before: Awaited<ReturnType<NonNullable<Peer['commitCounters']>>> | undefined;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      if (!measuring && now >= tracker.windowStart) {
        measuring = {
          server: new CpuMeter(peer.serverPids),
          generator: new CpuMeter('self'),
          other: new OtherCpuMeter([peer.serverPids, 'self']),
        };
        void peer.commitCounters?.().then((c) => (before = c));
      }
      while (k < total && start + k * interval <= now) {
        const group = k % groups;
        const seq = Math.floor(k / groups);
        const scheduled = start + k * interval;
        const clientId = tracker.clientId(group, seq);
        tracker.markSent(group, seq, scheduled);
        conns[group * members]!.sendToGroup(
          ids[group] as string,
          tracker.content(clientId),
          clientId,
        );
        if (scheduled >= tracker.windowStart) recordMs(lag, performance.now() - scheduled);
        k += 1;
      }
      if (k < total) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, Math.max(0, start - performance.now()));
  });
  await sleep(Math.max(0, tracker.windowEnd - performance.now()));
  const server = measuring?.server.stop() ?? { cpuSec: NaN, pct: NaN };
  const generator = measuring?.generator.stop() ?? { cpuSec: NaN, pct: NaN };
  const other = measuring?.other.stop() ?? { pct: NaN };
  const after = await peer.commitCounters?.();
  const drainStart = performance.now();
  while (tracker.outstanding > 0 && performance.now() - drainStart < s.drainSec * 1000) {
    await sleep(20);
  }
  const drained = round((performance.now() - drainStart) / 1000, 3);
  return {
    members,
    groups,
    sendRate: round(sendRate, 1),
    offeredDeliveriesPerSec: Math.round(sendRate * (members - 1)),
    warmupSec: round(s.warmupSec, 2),
    sentPerSec: Math.round(tracker.sentInWindow / s.durationSec),
    deliveredPerSec: Math.round(tracker.deliveredInWindow / s.durationSec),
    ...tracker.latencies(),
    sendLag: summarize(lag),
    accounting: tracker.accounting(),
    drainSec: drained,
    serverCpu: server,
    serverCpuUsPerDelivery: round(
      (server.cpuSec * 1e6) / Math.max(1, tracker.deliveredInWindow),
      2,
    ),
    generatorCpu: generator,
    otherCpu: other,
    ...(before && after ? { commits: commitStats(before, after, s.durationSec) } : {}),
  };
}
