// Where seeds live and what is recorded beside them, so that a benchmark reuses a seed instead of
// seeding again: a SQLite seed is FILE plus FILE.json (its SeedMeta); a PostgreSQL seed is a
// database of its own plus a row in its `bench_seed_meta` table (see seed-postgres.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SeedMeta, ShapeSettings } from './seed-shape.js';

/** The default SQLite seed file for these settings. */
export function seedPath(s: ShapeSettings): string {
  return path.join(os.tmpdir(), 'chat-bench-seed', `sqlite-${s.messages}-${s.users}.db`);
}

/** The default PostgreSQL seed database for these settings. */
export function pgDatabaseFor(s: ShapeSettings): string {
  return `chat_seed_${s.messages}_${s.users}`;
}

export function readSeedMeta(file: string): SeedMeta | undefined {
  try {
    return JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as SeedMeta;
  } catch {
    return undefined;
  }
}

export function writeSeedMeta(file: string, meta: SeedMeta): void {
  fs.writeFileSync(`${file}.json`, JSON.stringify(meta, null, 1) + '\n');
}
