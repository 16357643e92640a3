// Scenario 4 (chat server only), the HTTP side: a login storm (argon2id verification dominates,
// bounded count and concurrency) and history pages (GET /messages?with=&limit=50) over a
// conversation seeded first through the WebSocket.
import type { Identity } from '../lib/drivers.js';
import { pool } from '../lib/http.js';
import { PASSWORD, type Peer } from '../lib/peers.js';
import { CpuMeter, sleep } from '../lib/proc.js';
import { histogram, recordMs, summarize, type Latency } from '../lib/stats.js';
import { Tracker, type Accounting } from '../lib/tracker.js';
import { openPairs } from './pairs.js';

export interface AccountsSettings {
  logins: number;
  loginConcurrency: number;
  historyRequests: number;
  historyConcurrency: number;
  /** Messages sent into the conversation before reading its history. */
  seed: number;
  timeLimitSec: number;
}

export interface HttpStats {
  requests: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  perSec: number;
  latency: Latency;
  serverCpu: { cpuSec: number; pct: number };
}

export interface AccountsResult {
  settings: AccountsSettings;
  logins: HttpStats;
  history: HttpStats & { seedAccounting: Accounting };
}

async function storm(
  peer: Peer,
  count: number,
  concurrency: number,
  deadline: number,
  call: (i: number) => Promise<string | undefined>,
): Promise<HttpStats> {
  const h = histogram();
  const failures: Record<string, number> = {};
  let ok = 0;
  const cpu = new CpuMeter(peer.serverPids);
  const start = performance.now();
  const done = await pool(
    count,
    concurrency,
    async (i) => {
      const t = performance.now();
      let problem: string | undefined;
      try {
        problem = await call(i);
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      recordMs(h, performance.now() - t);
      if (problem === undefined) ok += 1;
      else failures[problem] = (failures[problem] ?? 0) + 1;
    },
    deadline,
  );
  const seconds = (performance.now() - start) / 1000;
  return {
    requests: done,
    ok,
    failed: done - ok,
    failures,
    perSec: Math.round((ok / seconds) * 10) / 10,
    latency: summarize(h),
    serverCpu: cpu.stop(),
  };
}

export async function accounts(
  peer: Peer,
  users: Identity[],
  s: AccountsSettings,
): Promise<AccountsResult> {
  const http = peer.http;
  if (!http) throw new Error('the accounts scenario needs the chat server');
  const deadline = performance.now() + s.timeLimitSec * 1000;
  const loginUsers = users.slice(0, Math.max(1, Math.min(8, users.length)));
  const logins = await storm(peer, s.logins, s.loginConcurrency, deadline, async (i) => {
    const username = loginUsers[i % loginUsers.length]!.username;
    const res = await http.request('POST', '/login', { body: { username, password: PASSWORD } });
    return res.status === 200 ? undefined : `HTTP ${res.status}`;
  });

  // Seed: `seed` messages from users[0] to users[1], closed loop with 10 in flight.
  const [a, b] = users as [Identity, Identity];
  const tracker = new Tracker('h', 1, 100);
  let seq = 0;
  const sendNext = () => {
    if (seq >= s.seed) return;
    const n = seq++;
    const clientId = tracker.clientId(0, n);
    tracker.markSent(0, n, performance.now());
    set.senders[0]!.send(b.username, tracker.content(clientId), clientId);
  };
  const set = await openPairs(peer, [a], [b], tracker, sendNext);
  try {
    for (let k = 0; k < 10; k++) sendNext();
    const until = Math.min(deadline, performance.now() + 30_000);
    while ((seq < s.seed || tracker.outstanding > 0) && performance.now() < until) await sleep(10);
  } finally {
    set.close();
  }
  const limit = 50;
  const history = await storm(peer, s.historyRequests, s.historyConcurrency, deadline, async () => {
    const res = await http.request<{ messages?: unknown[] }>(
      'GET',
      `/messages?with=${encodeURIComponent(b.username)}&limit=${limit}`,
      { token: a.token },
    );
    if (res.status !== 200) return `HTTP ${res.status}`;
    const n = res.body.messages?.length ?? 0;
    return n === Math.min(limit, s.seed) || n === limit ? undefined : `page of ${n} messages`;
  });
  return { settings: s, logins, history: { ...history, seedAccounting: tracker.accounting() } };
}
