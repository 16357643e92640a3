// npm run bench:seed: fills a database with N messages across U users, as the server would have
// written them (bench/lib/seed-sqlite.ts, bench/lib/seed-postgres.ts), for the growth benchmark
// (bench/growth.ts) to measure against. A seed that exists with the same settings is reused.
//
//   npm run bench:seed                                  # SQLite, 10,000,000 messages, 100,000 users
//   npm run bench:seed -- --messages 1000000 --out /tmp/seed.db
//   npm run bench:seed -- --database-url postgres://... # PostgreSQL, 1,000,000 messages, database chat_seed_1000000_100000
import fs from 'node:fs';
import { Passwords } from '../src/auth/passwords.js';
import { loadConfig } from '../src/config.js';
import { PASSWORD } from './lib/peers.js';
import { DEFAULT_SHAPE, type SeedMeta, type ShapeSettings } from './lib/seed-shape.js';
import { seedSqlite, sqliteSpace } from './lib/seed-sqlite.js';
import { seedPath, readSeedMeta, writeSeedMeta, pgDatabaseFor } from './lib/seed-files.js';
import { postgresSpace, seedPostgres } from './lib/seed-postgres.js';

interface Args {
  out?: string;
  databaseUrl?: string;
  database?: string;
  messages?: number;
  users: number;
  seed: number;
  cacheMiB: number;
  force: boolean;
}

const HELP = `npm run bench:seed -- [flags]
  --out FILE            SQLite file to write (default $TMPDIR/chat-bench-seed/sqlite-<messages>-<users>.db);
                        its settings and the users to measure with go to FILE.json
  --database-url URL    seed PostgreSQL instead (or DATABASE_URL), into a database of its own on that
                        server: --database (default chat_seed_<messages>_<users>); the server only
                        uses the public schema, so benchmarks clone that database per run
  --messages N          default 10,000,000 (SQLite), 1,000,000 (PostgreSQL)
  --users U             default 100,000
  --seed S              PRNG seed (default ${DEFAULT_SHAPE.seed})
  --cache-mib M         SQLite page cache while seeding (default 1024): bounds the memory
  --force               seed again even if a seed with these settings exists`;

function parse(argv: string[]): Args | 'help' {
  const args: Args = { users: 100_000, seed: DEFAULT_SHAPE.seed, cacheMiB: 1024, force: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = () => {
      const n = Number(value().replaceAll(',', '').replaceAll('_', ''));
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
      return n;
    };
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--out':
        args.out = value();
        break;
      case '--database-url':
        args.databaseUrl = value();
        break;
      case '--database':
        args.database = value();
        break;
      case '--messages':
        args.messages = int();
        break;
      case '--users':
        args.users = int();
        break;
      case '--seed':
        args.seed = int();
        break;
      case '--cache-mib':
        args.cacheMiB = int();
        break;
      case '--force':
        args.force = true;
        break;
      default:
        throw new Error(`unknown flag ${flag} (--help lists them)`);
    }
  }
  return args;
}

const sameSettings = (a: ShapeSettings, b: ShapeSettings) =>
  (Object.keys(a) as Array<keyof ShapeSettings>).every((k) => a[k] === b[k]);

function report(meta: SeedMeta, where: string): void {
  console.log(
    `${where}: ${meta.settings.messages.toLocaleString('en-US')} messages (${meta.events.toLocaleString('en-US')} events), ` +
      `${meta.settings.users.toLocaleString('en-US')} users, ${meta.conversations.toLocaleString('en-US')} conversations; ` +
      `seeded in ${meta.seconds} s (${Math.round(meta.settings.messages / meta.seconds).toLocaleString('en-US')} messages/s); ` +
      `${(meta.bytes / 2 ** 20).toFixed(0)} MiB on disk, ${meta.bytesPerMessage} bytes per message`,
  );
  const top = meta.topDirect[0];
  const user = meta.topUsers[0];
  const social = meta.mostConversations[0];
  if (top)
    console.log(`busiest direct conversation: ${top.messages.toLocaleString('en-US')} messages`);
  if (user)
    console.log(
      `largest stream: ${user.stream.toLocaleString('en-US')} events over ${user.conversations} conversations`,
    );
  if (social)
    console.log(
      `most conversations: ${social.conversations} (${social.stream.toLocaleString('en-US')} events)`,
    );
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args === 'help') {
    console.log(HELP);
    return;
  }
  const databaseUrl = args.databaseUrl ?? process.env.DATABASE_URL;
  const postgres = databaseUrl !== undefined && databaseUrl !== '';
  const shape: ShapeSettings = {
    messages: args.messages ?? (postgres ? 1_000_000 : 10_000_000),
    users: args.users,
    groupShare: DEFAULT_SHAPE.groupShare,
    spanDays: DEFAULT_SHAPE.spanDays,
    seed: args.seed,
  };
  const config = loadConfig({});
  // One argon2id hash with the server's own settings, shared by every seeded user.
  const passwordHash = await new Passwords({
    memoryCostKiB: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
  }).hash(PASSWORD);
  const log = (line: string) => console.log(line);

  if (postgres) {
    const database = args.database ?? pgDatabaseFor(shape);
    const meta = await seedPostgres({
      url: databaseUrl,
      database,
      shape,
      passwordHash,
      force: args.force,
      log,
    });
    report(meta, `PostgreSQL database ${database}`);
    console.log('bytes per message by table (indexes and TOAST included):');
    for (const { name, bytes } of await postgresSpace(databaseUrl, database))
      console.log(`  ${name.padEnd(28)} ${(bytes / shape.messages).toFixed(1)}`);
    return;
  }

  const out = args.out ?? seedPath(shape);
  const existing = readSeedMeta(out);
  if (existing && !args.force && fs.existsSync(out) && sameSettings(existing.settings, shape)) {
    report(existing, `${out} (reused; --force seeds again)`);
    return;
  }
  console.log(
    `seeding ${out}: ${shape.messages.toLocaleString('en-US')} messages, ${shape.users.toLocaleString('en-US')} users`,
  );
  fs.rmSync(`${out}.json`, { force: true });
  const meta = await seedSqlite({ out, shape, passwordHash, cacheMiB: args.cacheMiB, log });
  writeSeedMeta(out, meta);
  report(meta, out);
  console.log('bytes per message by table and index:');
  for (const { name, bytes } of sqliteSpace(out))
    console.log(`  ${name.padEnd(28)} ${(bytes / shape.messages).toFixed(1)}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
