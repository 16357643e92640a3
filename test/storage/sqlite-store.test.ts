// The Store contract against SQLite, plus what only SQLite promises (pragmas, migrations).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';
import { openWorkerSqliteStore } from '../../src/storage/worker-sqlite-store.js';
import { storeContract } from './store.contract.js';

const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chat-store-')), 'chat.db');

storeContract('sqlite', (options) => openSqliteStore({ file: tmp(), ...options }));

describe('SqliteStore specifics', () => {
  it('uses WAL, synchronous=FULL and foreign keys, and reopens an existing database', async () => {
    const file = tmp();
    const store = await openSqliteStore({ file });
    await store.createUser('kim', 'h');
    await store.close();
    const again = await openSqliteStore({ file });
    expect(await again.findUserByName('KIM')).toBeDefined();
    await again.close();
    const db = new Database(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const migrations = db.prepare('SELECT name FROM kysely_migration').all();
    expect(migrations).toEqual([{ name: '001_initial' }]);
    db.close();
  });

  it('checkpoints on its own thread with backgroundCheckpoints, not inside commits', async () => {
    const file = tmp();
    const store = await openSqliteStore({ file, backgroundCheckpoints: true });
    const db = new Database(file);
    const [a, b] = [await store.createUser('ann', 'h'), await store.createUser('ben', 'h')];
    for (let i = 0; i < 50; i++)
      await store.appendMessages(
        Array.from({ length: 20 }, (_, j) => ({
          senderId: i % 2 ? a.id : b.id,
          receiver: i % 2 ? 'ben' : 'ann',
          content: `m${i}.${j}`,
        })),
      );
    // The writer alone would leave every frame in the WAL (far below 4,000 pages): the
    // checkpointer thread copies them into the database file within a few of its 20 ms turns.
    const deadline = Date.now() + 5000;
    for (;;) {
      const [state] = db.pragma('wal_checkpoint(NOOP)') as Array<{
        log: number;
        checkpointed: number;
      }>;
      if (state && state.log > 0 && state.checkpointed === state.log) break;
      if (Date.now() > deadline) throw new Error(`WAL not checkpointed: ${JSON.stringify(state)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    db.close();
    await store.close();
  });

  it('serves the hot queries from indexes', async () => {
    const file = tmp();
    (await openSqliteStore({ file })).close();
    const db = new Database(file);
    const plan = (sql: string) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((r) => (r as { detail: string }).detail)
        .join('; ');
    expect(
      plan(
        'SELECT message_id FROM inbox WHERE user_id = 1 AND message_id > 5 ORDER BY message_id LIMIT 10',
      ),
    ).toMatch(/SEARCH inbox USING PRIMARY KEY/);
    expect(
      plan(
        'SELECT id FROM messages WHERE conversation_id = 1 AND id < 9 ORDER BY id DESC LIMIT 10',
      ),
    ).toMatch(/SEARCH messages USING (COVERING )?INDEX messages_by_conversation/);
    expect(plan("SELECT * FROM users WHERE username_key >= 'a' AND username_key < 'b'")).toMatch(
      /USING INDEX/,
    );
    db.close();
  });
});

storeContract('sqlite on a worker thread', (options) =>
  openWorkerSqliteStore({ file: tmp(), ...options }),
);
