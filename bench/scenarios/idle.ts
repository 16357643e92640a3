// Scenario 3, idle connections: K authenticated WebSockets opened with C handshakes in flight,
// from source addresses 127.0.0.2, 127.0.0.3, ... (at most PER_ADDRESS each, fresh ones for every
// run, so neither ephemeral ports nor TIME_WAIT from an earlier run get in the way). Reports the
// handshake rate and the server's RSS growth per connection.
import { NO_EVENTS, type ClientConnection, type Identity } from '../lib/drivers.js';
import type { Peer } from '../lib/peers.js';
import { CpuMeter, isRunning, rssKiB, round, sleep } from '../lib/proc.js';

export interface IdleSettings {
  connections: number;
  concurrency: number;
  /** Stop opening after this many seconds. */
  timeLimitSec: number;
}

export interface IdleResult {
  settings: IdleSettings;
  opened: number;
  failed: number;
  failures: Record<string, number>;
  openSec: number;
  handshakesPerSec: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  /** RSS growth per open connection, in KiB. */
  kibPerConnection: number;
  /** The chat server's V8 heap in use (nodejs_heap_size_used_bytes of /metrics), MiB. */
  heapBeforeMiB?: number;
  heapAfterMiB?: number;
  /** Heap growth per open connection, in KiB (garbage not yet collected included). */
  heapKiBPerConnection?: number;
  /** This process's RSS before and after opening the connections, MiB. */
  generatorRssBeforeMiB: number;
  generatorRssAfterMiB: number;
  serverCpu: { cpuSec: number; pct: number };
  generatorCpu: { cpuSec: number; pct: number };
  sourceAddresses: string[];
  /** Connections that closed before the suite closed them. */
  unexpectedCloses: number;
}

const PER_ADDRESS = 5000;

/** The chat server's heap in use, in MiB (undefined for peers without /metrics). */
async function heapMiB(peer: Peer): Promise<number | undefined> {
  if (!peer.http) return undefined;
  try {
    const res = await peer.http.request<string>('GET', '/metrics');
    const text = typeof res.body === 'string' ? res.body : '';
    const bytes = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN);
    return Number.isFinite(bytes) ? round(bytes / 2 ** 20, 1) : undefined;
  } catch {
    return undefined;
  }
}
let nextAddress = 2;

/** Fresh loopback source addresses: 127.0.0.2, ..., 127.0.0.254, 127.0.1.1, ... */
function takeAddresses(count: number): string[] {
  const out: string[] = [];
  while (out.length < count) {
    const n = nextAddress++;
    const third = n >> 8;
    const fourth = n & 255;
    if (fourth === 0 || fourth === 255) continue;
    out.push(`127.0.${third}.${fourth}`);
  }
  return out;
}

export async function idle(peer: Peer, users: Identity[], s: IdleSettings): Promise<IdleResult> {
  const addresses = takeAddresses(Math.max(1, Math.ceil(s.connections / PER_ADDRESS)));
  const connections: ClientConnection[] = [];
  const failures: Record<string, number> = {};
  let closing = false;
  let closes = 0;
  const events = { ...NO_EVENTS, close: () => void (closing || closes++) };
  await sleep(500);
  const heapBefore = await heapMiB(peer);
  const generatorRssBefore = round(process.memoryUsage().rss / 2 ** 20, 0);
  const rssBefore = rssKiB(peer.child.pid);
  const serverCpu = new CpuMeter(peer.serverPids);
  const generatorCpu = new CpuMeter('self');
  const start = performance.now();
  const deadline = start + s.timeLimitSec * 1000;
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < s.connections && performance.now() < deadline && isRunning(peer.child)) {
      const i = next++;
      try {
        const conn = await peer.driver.connect(users[i % users.length] as Identity, events, {
          localAddress: addresses[Math.floor(i / PER_ADDRESS)],
          timeoutMs: 15_000,
        });
        connections.push(conn);
      } catch (error) {
        failed += 1;
        const reason = (error instanceof Error ? error.message : String(error)).slice(0, 80);
        failures[reason] = (failures[reason] ?? 0) + 1;
        if (failed > 100 && failed > connections.length) break;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(s.concurrency, s.connections) }, worker));
    const openSec = (performance.now() - start) / 1000;
    const server = serverCpu.stop();
    const generator = generatorCpu.stop();
    await sleep(2000);
    const rssAfter = isRunning(peer.child) ? rssKiB(peer.child.pid) : NaN;
    const heapAfter = isRunning(peer.child) ? await heapMiB(peer) : undefined;
    const opened = connections.length;
    return {
      settings: s,
      opened,
      failed,
      failures,
      openSec: round(openSec, 2),
      handshakesPerSec: Math.round(opened / openSec),
      rssBeforeKiB: rssBefore,
      rssAfterKiB: rssAfter,
      kibPerConnection: round((rssAfter - rssBefore) / Math.max(opened, 1), 2),
      ...(heapBefore !== undefined && heapAfter !== undefined
        ? {
            heapBeforeMiB: heapBefore,
            heapAfterMiB: heapAfter,
            heapKiBPerConnection: round(((heapAfter - heapBefore) * 1024) / Math.max(opened, 1), 2),
          }
        : {}),
      generatorRssBeforeMiB: generatorRssBefore,
      generatorRssAfterMiB: round(process.memoryUsage().rss / 2 ** 20, 0),
      serverCpu: server,
      generatorCpu: generator,
      sourceAddresses: addresses,
      unexpectedCloses: closes,
    };
  } finally {
    closing = true;
    for (const conn of connections) conn.close();
    await sleep(1000);
  }
}
