// Dedicated PostgreSQL and Redis servers for the scenarios that stop and restart them (the shared
// ones in DATABASE_URL and REDIS_URL are never stopped). Each runs as a child process of the test,
// on a free loopback port, in a temporary directory; stopping it signals that process by PID. As
// scripts/services.sh does, PostgreSQL runs as the `postgres` user when the tests run as root.
// Without the binaries a suite is skipped with a one-line notice, except under CI=true, where that
// fails the run (like test/helpers/services.ts).
//
// A server child process (src/main.ts) always uses the `public` schema and Redis channel
// `chat:events`, which other runs on the shared servers use too (with other migrations, and
// events for user ids that exist in this run as well): scenarios give each deployment a database
// of its own on the shared PostgreSQL (`freshDatabase`) and a Redis server of its own.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, sleep } from './process.js';

function missing(what: string): undefined {
  if (process.env.CI === 'true')
    throw new Error(`${what} is required when CI=true (see scripts/services.sh)`);
  console.warn(`skipping: ${what} not found; install it to run this suite`);
  return undefined;
}

function pgBin(): string | undefined {
  const versions = fs.existsSync('/usr/lib/postgresql')
    ? fs.readdirSync('/usr/lib/postgresql')
    : [];
  const latest = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (latest && fs.existsSync(`/usr/lib/postgresql/${latest}/bin/postgres`))
    return `/usr/lib/postgresql/${latest}/bin`;
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

function which(binary: string): string | undefined {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user. */
function owner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  return { uid, gid };
}

/** A server process that can be stopped and started again on the same port and data. */
abstract class Service {
  protected child: ChildProcess | undefined;
  protected output = '';

  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  protected abstract spawn(): ChildProcess;
  protected abstract ready(): Promise<boolean>;

  async start(timeoutMs = 20_000): Promise<void> {
    const child = this.spawn();
    this.child = child;
    child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    const deadline = Date.now() + timeoutMs;
    while (!(await this.ready())) {
      if (!this.running || Date.now() > deadline)
        throw new Error(`${this.constructor.name} did not start:\n${this.output.slice(-2000)}`);
      await sleep(50);
    }
  }

  /** Signals the server's process and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  /** Stops the server (fast) and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop('SIGINT');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export class Postgres extends Service {
  constructor(
    dir: string,
    port: number,
    private readonly bin: string,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {
    super(dir, port);
  }

  /** A URL for `database` on this server. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    await client.query(`CREATE DATABASE ${name}`);
    await client.end();
    return this.url(name);
  }

  /** SIGQUIT: an immediate shutdown, as in a crash (recovery runs at the next start). */
  crash(): Promise<void> {
    return this.stop('SIGQUIT');
  }

  protected spawn(): ChildProcess {
    return spawn(
      `${this.bin}/postgres`,
      [
        ...['-D', path.join(this.dir, 'pg'), '-p', String(this.port), '-k', this.dir],
        ...['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=100'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], ...this.user },
    );
  }

  protected async ready(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

export class RedisServer extends Service {
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected spawn(): ChildProcess {
    return spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  }

  protected async ready(): Promise<boolean> {
    return this.output.includes('Ready to accept connections');
  }
}

/** Whether PostgreSQL's binaries are here (else a notice, or a throw under CI=true). */
export function havePostgres(): boolean {
  const bin = pgBin();
  if (bin && fs.existsSync(`${bin}/initdb`)) return true;
  missing('PostgreSQL (initdb, postgres)');
  return false;
}

/** Whether redis-server is here (else a notice, or a throw under CI=true). */
export function haveRedis(): boolean {
  if (which('redis-server')) return true;
  missing('redis-server');
  return false;
}

/** A new PostgreSQL cluster, started (check `havePostgres` first). */
export async function startPostgres(): Promise<Postgres> {
  const bin = pgBin()!;
  const user = owner();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-pg-'));
  fs.chmodSync(dir, 0o755);
  if (user) fs.chownSync(dir, user.uid, user.gid);
  execFileSync(
    `${bin}/initdb`,
    [
      '-D',
      path.join(dir, 'pg'),
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
    ],
    { stdio: 'ignore', ...user },
  );
  const server = new Postgres(dir, await freePort(), bin, user);
  await server.start();
  return server;
}

/** A new database on the PostgreSQL server of `url`, and how to drop it. */
export async function freshDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `chat_fault_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const own = new URL(url);
  own.pathname = `/${name}`;
  return { url: own.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** A new Redis server, started (check `haveRedis` first). */
export async function startRedis(): Promise<RedisServer> {
  const server = new RedisServer(
    fs.mkdtempSync(path.join(os.tmpdir(), 'chat-fault-redis-')),
    await freePort(),
  );
  await server.start();
  return server;
}
