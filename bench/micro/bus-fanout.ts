// The Redis bus between nodes (`npm run bench:bus`): how many delivery events one Redis server
// carries to S other nodes, and what each costs Redis, the publishing node and every receiving
// node. Every node subscribes to one channel and gets every other node's events (it drops those
// for users it does not hold), so a node's receiving cost follows the whole cluster's rate.
//
// One publisher (a RedisBus, as a node's) publishes the `deliver` event of a stored direct message
// exactly as src/chat/send.ts builds it (the frame from encodeFrame, 100 characters of content),
// E events per tick (one commit's deliveries leave in one PUBLISH), with 4 ticks in flight, for
// --seconds (default 3) per line; S child processes (--subscribers, default 1,2,4) each open a
// RedisBus and run what the hub runs for an event whose users it does not hold (one map lookup
// per user id). Per line: events/s published and received per subscriber, CPU (from /proc) of
// Redis, the publisher and each subscriber, per event, and the Redis ceiling: events/s at 100% of
// one core for Redis at that CPU per event.
//
// Redis: REDIS_URL when set, else a throw-away server from scripts/services.sh (with PostgreSQL,
// unused), pinned to core 0; this process and the subscribers go to core 1. Run it under the
// bench lock: flock /tmp/bench.lock npm run bench:bus
import { fork, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRedisBus } from '../../src/bus/redis-bus.js';
import type { BusEvent } from '../../src/bus/bus.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import { cpuSeconds } from '../lib/proc.js';
import { startServices, stopServices } from '../lib/services.js';
import { counts, option } from '../lib/machine.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHANNEL = 'chat:bench-bus';
const quiet = { info() {}, warn() {} };

if (process.env.BUS_BENCH_ROLE === 'subscriber') {
  // A receiving node: counts events, does the hub's lookup, reports its count and CPU on request.
  const bus = await openRedisBus({ url: process.env.REDIS_URL!, channel: CHANNEL, logger: quiet });
  const local = new Map<string, unknown>();
  let events = 0;
  bus.subscribe((event) => {
    events++;
    if (event.type === 'deliver') for (const u of event.userIds) local.get(u);
  });
  process.on('message', (m: string) => {
    if (m === 'mark') {
      const u = process.cpuUsage();
      process.send!({ events, cpu: (u.user + u.system) / 1e6 });
    } else if (m === 'stop') void bus.close().then(() => process.exit(0));
  });
  process.send!('ready');
} else {
  await main();
}

async function main(): Promise<void> {
  const subscriberCounts = counts(option('subscribers', '1,2,4'));
  const perTick = counts(option('events', '1,10,100'));
  const seconds = Math.min(20, Math.max(0.5, Number(option('seconds', '3'))));
  if (Math.max(...subscriberCounts) > 16) throw new Error('--subscribers: at most 16');

  let redisUrl = process.env.REDIS_URL ?? '';
  let redisPid: number | undefined;
  if (!redisUrl) {
    const services = startServices(ROOT, 0);
    redisUrl = services.redisUrl;
    redisPid = services.pids().at(-1);
    try {
      execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    } catch {
      /* unpinned */
    }
  }
  process.on('exit', () => stopServices());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const redisCpu = () => (redisPid === undefined ? NaN : cpuSeconds(redisPid));

  const createdAt = new Date().toISOString();
  let id = 1_000_000;
  const eventOf = (): BusEvent => {
    const messageId = String(id++);
    return {
      type: 'deliver',
      userIds: ['1234', '5678'],
      messageId,
      frame: encodeFrame({
        type: 'message',
        id: messageId,
        conversationId: '4321',
        sender: 'snd12',
        receiver: 'rcv12',
        content: 'x'.repeat(100),
        createdAt,
      }),
      committedAt: Date.now(),
      exceptConnectionId: 'n3k8f2-1a',
      receipt: { conversationId: '4321', senderId: '1234' },
    };
  };
  const envelopeBytes = (e: number) =>
    Buffer.byteLength(
      JSON.stringify({ o: 'abcdefghijklmnop', es: Array.from({ length: e }, eventOf) }),
    );

  const publisher = await openRedisBus({ url: redisUrl, channel: CHANNEL, logger: quiet });
  const lines: string[] = [];
  const header =
    '| other nodes | events per PUBLISH | bytes per PUBLISH | events/s published | events/s received per node | Redis CPU | Redis us/event | publisher us/event | receiver us/event | Redis ceiling events/s (100% of a core) |';
  lines.push(
    header,
    `|${header
      .split('|')
      .slice(1, -1)
      .map(() => ' --- ')
      .join('|')}|`,
  );
  try {
    for (const subscribers of subscriberCounts) {
      const children = await Promise.all(
        Array.from({ length: subscribers }, async () => {
          const child = fork(fileURLToPath(import.meta.url), [], {
            env: { ...process.env, BUS_BENCH_ROLE: 'subscriber', REDIS_URL: redisUrl },
            execArgv: ['--import', 'tsx'],
          });
          await new Promise<void>((resolve, reject) => {
            child.once('message', () => resolve());
            child.once('exit', (code) => reject(new Error(`subscriber exited with ${code}`)));
          });
          return child;
        }),
      );
      const mark = () =>
        Promise.all(
          children.map(
            (c) =>
              new Promise<{ events: number; cpu: number }>((resolve) => {
                c.once('message', (m) => resolve(m as { events: number; cpu: number }));
                c.send('mark');
              }),
          ),
        );
      for (const e of perTick) {
        // Warm-up, then the measured window.
        const pump = async (ms: number) => {
          const end = performance.now() + ms;
          let sent = 0;
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              while (performance.now() < end) {
                // What RedisBus.send does with one tick's events (publish() would merge the four
                // loops' events, published in one tick, into one PUBLISH).
                const es = Array.from({ length: e }, eventOf);
                await publisher.client.publish(
                  CHANNEL,
                  JSON.stringify({ o: publisher.nodeId, es }),
                );
                sent += e;
              }
            }),
          );
          return sent;
        };
        await pump(300);
        await new Promise((r) => setTimeout(r, 200));
        const before = await mark();
        const r0 = redisCpu();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const sent = await pump(seconds * 1000);
        await new Promise((r) => setTimeout(r, 300)); // the last ones arrive
        const wall = (performance.now() - t0) / 1000;
        const c1 = process.cpuUsage(c0);
        const redis = redisCpu() - r0;
        const after = await mark();
        const received = after.map((a, i) => a.events - before[i]!.events);
        const receiverCpu = after.map((a, i) => a.cpu - before[i]!.cpu);
        const perEvent = (cpu: number, n: number) => ((cpu * 1e6) / n).toFixed(2);
        const meanReceived = received.reduce((s, n) => s + n, 0) / received.length;
        const meanReceiverCpu = receiverCpu.reduce((s, n) => s + n, 0) / receiverCpu.length;
        const redisPerEvent = (redis * 1e6) / sent;
        lines.push(
          `| ${subscribers} | ${e} | ${envelopeBytes(e).toLocaleString('en-US')} | ${Math.round(sent / wall).toLocaleString('en-US')} | ${Math.round(meanReceived / wall).toLocaleString('en-US')} | ${((100 * redis) / wall).toFixed(0)}% | ${redisPerEvent.toFixed(2)} | ${perEvent((c1.user + c1.system) / 1e6, sent)} | ${perEvent(meanReceiverCpu, meanReceived)} | ${Number.isFinite(redisPerEvent) ? Math.round(1e6 / redisPerEvent).toLocaleString('en-US') : '-'} |`,
        );
        console.error(lines.at(-1));
        if (received.some((n) => n < sent * 0.99))
          console.error(`  note: a subscriber received ${Math.min(...received)} of ${sent}`);
      }
      for (const c of children) c.send('stop');
      await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
    }
  } finally {
    await publisher.close();
  }
  const md = [
    `# Redis bus fan-out: ${new Date().toISOString()}`,
    '',
    `${fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? '?'}, Node ${process.version}; ` +
      `${redisPid === undefined ? 'REDIS_URL' : 'throw-away Redis pinned to core 0, publisher and subscribers on core 1'}; ${seconds} s per line; 4 PUBLISHes in flight.`,
    '',
    ...lines,
    '',
  ].join('\n');
  const out = path.join(
    ROOT,
    'bench',
    'results',
    `bus-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.md`,
  );
  fs.writeFileSync(out, md);
  console.log(md);
  console.log(`written to ${path.relative(ROOT, out)}`);
  stopServices();
}
