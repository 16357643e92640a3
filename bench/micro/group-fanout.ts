// What fan-out on write costs as groups grow (`npm run bench:fanout`): a group message is one
// `messages` row plus one `inbox` row per member (sqlite-store.ts appendMessage,
// insertInboxMembers), so that each member's sync is one index range scan. For groups of 2, 10,
// 100 and 256 members, M group messages are appended in batches of B (as the group commit makes
// them), and measured three ways on copies of the same database (users and one group, made once
// per size):
//
//   store   SqliteStore.appendMessages, the server's path (WAL, synchronous=FULL, checkpoints
//           on their own thread as the server runs it);
//   raw+    the store's two statements, message then inbox rows, in B-message transactions;
//   raw-    the message statement alone: what fan-out on read would write (no inbox rows).
//
// raw+ and raw- differ only by the inbox statement, so their difference is what the inbox rows
// cost; the store line adds the store's own work (checks, caches, the event it returns).
// Time: wall and CPU microseconds per message, the median of R runs (sizes alternate
// ascending and descending, variants rotate, each on a fresh copy). Size: bytes of pages
// (`dbstat`, after a TRUNCATE checkpoint) added per message, split into the messages table with
// its indexes and the inbox table. Fan-out on read makes reads do the merging instead (a sync
// over every conversation of the user): that side is not measured here.
//
// Bounded (M x sizes x variants x R messages), one process pinned to core 0 (the server's core
// in `npm run bench`; `--no-pin` to leave it), temporary files deleted at the end. Prints a
// Markdown table and writes it to bench/results/fanout-<timestamp>.md.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { SAFETY_NET_PAGES, startCheckpointer } from '../../src/storage/sqlite-checkpointer.js';
import type { NewEvent } from '../../src/storage/store.js';
import { hasTaskset, pinSelf } from '../lib/proc.js';
import { cpuModel, git } from '../lib/machine.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'bench', 'results');

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '2,10,100,256' },
    messages: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '50' },
    runs: { type: 'string', default: '5' },
    'no-pin': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(
    'npm run bench:fanout -- [--sizes 2,10,100,256] [--messages 2000] [--batch 50] [--runs 5] [--no-pin]',
  );
  process.exit(0);
}
const SIZES = values.sizes.split(',').map(Number);
const MESSAGES = Number(values.messages);
const BATCH = Number(values.batch);
const RUNS = Number(values.runs);
const WARMUP_BATCHES = 5;
const CONTENT = 'x'.repeat(100);
for (const [name, n, min, max] of [
  ['messages', MESSAGES, 1, 100_000],
  ['batch', BATCH, 1, 1000],
  ['runs', RUNS, 1, 50],
] as const) {
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer from ${min} to ${max}`);
    process.exit(2);
  }
}
if (SIZES.some((s) => !Number.isInteger(s) || s < 2 || s > 256)) {
  console.error('--sizes: integers from 2 to 256 (the default member limit)');
  process.exit(2);
}

const pinned = values['no-pin'] !== true && os.cpus().length > 1 && hasTaskset();
if (pinned) pinSelf(0);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'group-fanout-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

// The store's statements (sqlite-store.ts: insertMessage, insertInboxMembers), for the raw lines.
const INSERT_MESSAGE = `INSERT INTO messages (conversation_id, sender_id, receiver_id, content, created_at, client_id, hidden_from)
  VALUES (?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING`;
const INSERT_INBOX_MEMBERS = `INSERT OR IGNORE INTO inbox (user_id, message_id)
  SELECT user_id, ? FROM conversation_members WHERE conversation_id = ?`;

interface Base {
  file: string;
  conversationId: string;
  /** User ids of the members; the group's messages rotate over them as senders. */
  memberIds: string[];
}

/** A database with `size` users and one group of all of them, made through the store. */
async function makeBase(size: number): Promise<Base> {
  const file = path.join(dir, `base-${size}.db`);
  const store = await openSqliteStore({ file });
  const ids: string[] = [];
  for (let i = 0; i < size; i++) ids.push((await store.createUser(`u${i}`, 'hash')).id);
  const result = await store.changeConversation(
    { kind: 'create', actorId: ids[0]!, title: `group of ${size}`, memberIds: ids.slice(1) },
    256,
  );
  if (result.kind !== 'changed') throw new Error(`group of ${size}: ${JSON.stringify(result)}`);
  await store.close();
  return { file, conversationId: result.conversationId, memberIds: ids };
}

/**
 * Bytes of pages by table (indexes counted with their table), after a TRUNCATE checkpoint.
 * The checkpointer thread of the connection just closed may still be checkpointing: retry (at
 * most 5 s) until the checkpoint completes.
 */
async function pageBytes(file: string): Promise<Map<string, number>> {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    for (let attempt = 0; ; attempt++) {
      const [checkpoint] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      if (checkpoint?.busy === 0) break;
      if (attempt >= 250) throw new Error(`checkpoint of ${file} did not complete`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const rows = db
      .prepare<[], { tbl: string; bytes: number }>(
        `SELECT COALESCE(m.tbl_name, d.name) AS tbl, SUM(d.pgsize) AS bytes
         FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY tbl`,
      )
      .all();
    return new Map(rows.map((r) => [r.tbl, r.bytes]));
  } finally {
    db.close();
  }
}

type Variant = 'store' | 'raw+' | 'raw-';
const VARIANTS: Variant[] = ['store', 'raw+', 'raw-'];

interface Sample {
  wallUs: number;
  cpuUs: number;
  /** Bytes of pages added per message: the messages table with its indexes, the inbox. */
  messageBytes: number;
  inboxBytes: number;
}

type Batch = Array<{ senderId: number; clientId: string }>;

interface Writer {
  append(batch: Batch): Promise<void>;
  close(): Promise<void>;
}

/** Opens `file` for `variant`, as the store opens its file and as the server runs it. */
async function open(variant: Variant, file: string, conversationId: number): Promise<Writer> {
  if (variant === 'store') {
    const store = await openSqliteStore({ file, backgroundCheckpoints: true });
    return {
      async append(batch) {
        const events: NewEvent[] = batch.map((m) => ({
          kind: 'message',
          senderId: String(m.senderId),
          conversationId: String(conversationId),
          content: CONTENT,
          clientId: m.clientId,
        }));
        const results = await store.appendMessages(events);
        if (results.some((r) => r.kind !== 'stored')) throw new Error('not stored');
      },
      close: () => store.close(),
    };
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`);
  const checkpointer = startCheckpointer(file);
  const insertMessage = db.prepare(INSERT_MESSAGE);
  const insertInbox = db.prepare(INSERT_INBOX_MEMBERS);
  const withInbox = variant === 'raw+';
  // One timestamp per batch, as the store does.
  const tx = db.transaction((batch: Batch) => {
    const now = new Date().toISOString();
    for (const m of batch) {
      const { changes, lastInsertRowid } = insertMessage.run(
        conversationId,
        m.senderId,
        null,
        CONTENT,
        now,
        m.clientId,
        null,
      );
      if (changes !== 1) throw new Error('not stored');
      if (withInbox) insertInbox.run(Number(lastInsertRowid), conversationId);
    }
  });
  return {
    append: async (batch) => void tx.immediate(batch),
    close: async () => {
      checkpointer.stop();
      db.close();
    },
  };
}

let clientSeq = 0;
let sampleSeq = 0;
/**
 * Files of finished samples. The checkpointer thread closes its connection asynchronously after
 * `stop()`, so a sample's files are deleted two samples later, not at once.
 */
const finished: string[][] = [];

/**
 * One variant on a fresh copy of `base`: a warm-up, then MESSAGES messages timed on the
 * checkpointed file, senders rotating over the members.
 */
async function sample(base: Base, variant: Variant): Promise<Sample> {
  const file = path.join(dir, `run${sampleSeq++}-${variant}-${base.memberIds.length}.db`);
  finished.push(['', '-wal', '-shm'].map((suffix) => file + suffix));
  while (finished.length > 3) {
    for (const f of finished.shift()!) fs.rmSync(f, { force: true });
  }
  fs.copyFileSync(base.file, file);
  const conversationId = Number(base.conversationId);
  const members = base.memberIds.map(Number);
  let k = 0;
  const batch = (): Batch =>
    Array.from({ length: BATCH }, () => ({
      senderId: members[k++ % members.length]!,
      clientId: `f${clientSeq++}`,
    }));
  const warm = await open(variant, file, conversationId);
  for (let i = 0; i < WARMUP_BATCHES; i++) await warm.append(batch());
  await warm.close();
  const before = await pageBytes(file);
  const writer = await open(variant, file, conversationId);
  const batches = Array.from({ length: Math.ceil(MESSAGES / BATCH) }, batch);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const b of batches) await writer.append(b);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  await writer.close();
  const after = await pageBytes(file);
  const n = batches.length * BATCH;
  const grown = (table: string) => ((after.get(table) ?? 0) - (before.get(table) ?? 0)) / n;
  return {
    wallUs: (wall * 1000) / n,
    cpuUs: (cpu.user + cpu.system) / n,
    messageBytes: grown('messages'),
    inboxBytes: grown('inbox'),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const started = new Date();
const t0 = performance.now();
console.error(
  `bench:fanout: groups of ${SIZES.join(', ')}; ${MESSAGES} messages in batches of ${BATCH}; ${RUNS} runs${pinned ? '; pinned to core 0' : ''}`,
);
const bases = new Map<number, Base>();
for (const size of SIZES) bases.set(size, await makeBase(size));

const samples = new Map<string, Sample[]>();
for (let run = 0; run < RUNS; run++) {
  const order = run % 2 === 0 ? SIZES : [...SIZES].reverse();
  for (const size of order) {
    // Rotate the variants too, so that none always runs first after a size change.
    const variants = VARIANTS.map((_, i) => VARIANTS[(i + run) % VARIANTS.length]!);
    for (const variant of variants) {
      const s = await sample(bases.get(size)!, variant);
      const key = `${size}:${variant}`;
      samples.set(key, [...(samples.get(key) ?? []), s]);
    }
  }
  console.error(`bench:fanout: run ${run + 1} of ${RUNS} done`);
}

const med = (size: number, variant: Variant, f: (s: Sample) => number) =>
  median((samples.get(`${size}:${variant}`) ?? []).map(f));
const range = (size: number, variant: Variant, f: (s: Sample) => number) => {
  const xs = (samples.get(`${size}:${variant}`) ?? []).map(f);
  return `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
};
const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

const commit = git(['rev-parse', '--short', 'HEAD']) || 'nocommit';
const dirty = git(['status', '--porcelain', '--', 'src']) !== '';
const L: string[] = [];
L.push(
  `# Group fan-out on SQLite, ${started.toISOString()} (${commit}${dirty ? ', uncommitted changes in src' : ''})`,
  '',
);
L.push(
  `- Command: \`npm run bench:fanout${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
);
L.push(
  `- Node ${process.version}, ${cpuModel()}, ${os.cpus().length} cores, Linux ${os.release()}; ${pinned ? 'pinned to core 0' : 'not pinned'}`,
);
L.push(
  `- ${MESSAGES} group messages of ${CONTENT.length} characters per line, in ${BATCH}-message transactions (WAL, synchronous=FULL, checkpoints on their own thread), after ${WARMUP_BATCHES} warm-up batches; senders rotate over the members; median of ${RUNS} runs (sizes alternating ascending and descending, variants rotating), each on a fresh copy of a database holding the users and the group`,
);
L.push(`- Wall time: ${((performance.now() - t0) / 1000).toFixed(1)} s`, '');
L.push(
  "Time per message, in microseconds: wall (fsync included; the noisier figure on a shared disk) and CPU of this process (all threads). **store**: `SqliteStore.appendMessages` (fan-out on write, the server's path). **raw+**: the store's two statements (the message, then one inbox row per member) in the same transactions; **raw-**: the message statement alone, what fan-out on read writes. **inbox rows** = raw+ minus raw-, their cost with everything else equal; divided by the members, the storage work per delivery (each member gets one inbox row). The store's time divided by the members is an upper bound of it (it includes the per-message work).",
  '',
);
L.push(
  row([
    'members',
    'store wall (range)',
    'store CPU',
    'store per member, wall / CPU',
    'raw+ wall / CPU',
    'raw- (fan-out on read) wall / CPU',
    'inbox rows wall / CPU',
    'inbox rows per member, wall / CPU',
    'raw+ / raw- CPU',
  ]),
);
L.push(row(Array(9).fill('---')));
for (const size of SIZES) {
  const w = (v: Variant) => med(size, v, (s) => s.wallUs);
  const c = (v: Variant) => med(size, v, (s) => s.cpuUs);
  const inboxWall = w('raw+') - w('raw-');
  const inboxCpu = c('raw+') - c('raw-');
  L.push(
    row([
      size,
      `${f0(w('store'))} (${range(size, 'store', (s) => s.wallUs)})`,
      f0(c('store')),
      `${f1(w('store') / size)} / ${f1(c('store') / size)}`,
      `${f0(w('raw+'))} / ${f0(c('raw+'))}`,
      `${f0(w('raw-'))} / ${f0(c('raw-'))}`,
      `${f0(inboxWall)} / ${f0(inboxCpu)}`,
      `${f2(inboxWall / size)} / ${f2(inboxCpu / size)}`,
      `${f1(c('raw+') / c('raw-'))}x`,
    ]),
  );
}
L.push(
  '',
  "Bytes on disk per message: pages (`dbstat`, page size included, after a TRUNCATE checkpoint) added by the timed messages, the messages table counted with its indexes. Fan-out on write is the store's database; fan-out on read the raw- database (no inbox rows).",
  '',
);
L.push(
  row([
    'members',
    'on write: messages + indexes',
    'on write: inbox',
    'on write: total',
    'inbox bytes per member',
    'on read: messages + indexes',
    'on write / on read',
  ]),
);
L.push(row(Array(7).fill('---')));
for (const size of SIZES) {
  const mb = med(size, 'store', (s) => s.messageBytes);
  const ib = med(size, 'store', (s) => s.inboxBytes);
  const rb = med(size, 'raw-', (s) => s.messageBytes + s.inboxBytes);
  L.push(row([size, f0(mb), f0(ib), f0(mb + ib), f1(ib / size), f0(rb), `${f1((mb + ib) / rb)}x`]));
}
L.push('');
const md = L.join('\n');
console.log(md);
fs.mkdirSync(RESULTS, { recursive: true });
const out = path.join(
  RESULTS,
  `fanout-${started
    .toISOString()
    .replace(/[:]/g, '-')
    .replace(/\.\d+Z$/, 'Z')}.md`,
);
fs.writeFileSync(out, md);
console.error(`written: ${path.relative(ROOT, out)}`);
