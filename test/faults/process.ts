// The server as a child process (the real src/main.ts under tsx, as in production), so that a
// fault is a real one: SIGKILL, SIGSTOP, a file deleted under it. Each node keeps its port across
// restarts, so reconnecting clients find it again; everything it logs is kept for assertions.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { request } from '../helpers/server.js';

const root = path.resolve(import.meta.dirname, '../..');
const alive = new Set<ChildProcess>();

/** The environment without storage, bus or key settings: a scenario sets its own. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET'].includes(key),
  ),
);

/** Limits out of the way of load: the scenarios test faults, not rate limits. */
const generous = {
  RATE_MESSAGES_PER_SEC: '1000000',
  RATE_MESSAGES_BURST: '1000000',
  RATE_API_PER_MIN: '10000000',
  RATE_WS_HANDSHAKES_PER_MIN: '10000000',
  RATE_LOGIN_PER_MIN: '1000000',
  RATE_REGISTER_PER_MIN: '1000000',
};

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One node: started, restarted, signalled, stopped. `url` and `wsUrl` stay the same throughout. */
export class ServerProcess {
  child: ChildProcess | undefined;
  /** Everything every run of this node printed (pino JSON lines). */
  log = '';
  readonly url: string;
  readonly wsUrl: string;
  private exit: Promise<Exit> = Promise.resolve({ code: 0, signal: null });

  constructor(
    readonly name: string,
    readonly port: number,
    readonly env: Record<string, string>,
    /** Open the V8 inspector on a free loopback port, for `liveHeap`. */
    readonly inspect = false,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/websocket`;
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error(`${this.name} is not running`);
    return this.child.pid;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Starts the node; resolves once it logs its start-up line. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const inspect = this.inspect ? ['--inspect=127.0.0.1:0'] : [];
    const child = spawn(process.execPath, [...inspect, '--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: {
        ...baseEnv,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        HOST: '127.0.0.1',
        ...generous,
        ...this.env,
        PORT: String(this.port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    alive.add(child);
    const from = this.log.length;
    child.stdout!.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        alive.delete(child);
        resolve({ code, signal });
      }),
    );
    const deadline = Date.now() + timeoutMs;
    while (!this.log.slice(from).includes('chat listening on')) {
      if (!this.running || Date.now() > deadline)
        throw new Error(`${this.name} did not start:\n${this.log.slice(from)}`);
      await sleep(20);
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Resolves when the current run has exited. */
  exited(): Promise<Exit> {
    return this.exit;
  }

  async kill(): Promise<Exit> {
    if (this.running) this.signal('SIGKILL');
    return this.exit;
  }

  /** SIGTERM (a graceful shutdown) and the exit. */
  async stop(): Promise<Exit> {
    if (!this.running) return this.exit;
    this.signal('SIGCONT'); // a stopped process cannot shut down
    this.signal('SIGTERM');
    return this.exit;
  }

  async readyz(): Promise<{ status: number; body: any }> {
    try {
      const res = await request(this, 'GET', '/readyz');
      return { status: res.status, body: res.body };
    } catch (error) {
      return { status: 0, body: String(error) };
    }
  }

  /** Polls /readyz until it answers `status`; returns how long that took (ms). */
  async waitReady(status: number, timeoutMs = 15_000): Promise<number> {
    const started = Date.now();
    for (;;) {
      const res = await this.readyz();
      if (res.status === status) return Date.now() - started;
      if (Date.now() - started > timeoutMs)
        throw new Error(`${this.name}: /readyz still ${res.status} ${JSON.stringify(res.body)}`);
      await sleep(50);
    }
  }

  /** The JSON log lines of every run so far. */
  logLines(): Array<Record<string, any>> {
    return this.log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);
  }

  /**
   * The server's live memory: a full garbage collection through the inspector, then its heap in
   * use and its buffers (external memory), in bytes. Only with `inspect`.
   */
  async liveHeap(): Promise<{ heapUsed: number; external: number }> {
    const url = this.log
      .match(/Debugger listening on (ws:\/\/\S+)/g)
      ?.at(-1)
      ?.split(' ')
      .at(-1);
    if (!url) throw new Error(`${this.name} has no inspector`);
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let next = 0;
    const call = (method: string, params: object = {}) =>
      new Promise<any>((resolve) => {
        const id = ++next;
        const onMessage = (data: WebSocket.RawData) => {
          const reply = JSON.parse(data.toString());
          if (reply.id !== id) return;
          ws.off('message', onMessage);
          resolve(reply.result);
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id, method, params }));
      });
    try {
      await call('HeapProfiler.collectGarbage');
      const { result } = await call('Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      });
      return JSON.parse(result.value);
    } finally {
      ws.close();
    }
  }

  /** Resident set size in KiB now and at its peak, from /proc. */
  memory(): { rssKiB: number; peakKiB: number } {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const field = (name: string) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))?.[1]);
    return { rssKiB: field('VmRSS'), peakKiB: field('VmHWM') };
  }
}

/** SIGKILLs every server a scenario left running (after SIGCONT, in case it is stopped). */
export function killAll(): void {
  for (const child of alive) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, polling; throws with `what` after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
