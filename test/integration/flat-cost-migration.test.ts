// Migration 004 (flat cost) on a schema-3 database with data in it: every row and value
// kept, each pending row in the lane its columns say, and re-runnable after a process
// died before recording it.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { MIGRATIONS_DIR, migrate, migrationFiles } from '../../src/db/migrate.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

const FILE = '004_flat_cost.sql';
/** The columns of jobs before 004, in a stable order. */
const OLD_COLUMNS = `id, queue, type, payload, status, priority, run_at, attempts, max_attempts, timeout_ms, concurrency_key,
  unique_key, paused, cancel_requested_at, progress, result, error, worker, created_at, queued_at, started_at,
  finished_at, cancelled_at, updated_at, active_concurrency_key, active_unique_key, cancel_pending, schedule_id, scheduled_for`;

let fresh: FreshDatabase;
let db: Database;
let before3: string;

async function q(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  return (await fresh.pool.query<mysql.RowDataPacket[]>(sql, params))[0];
}

describe('migration 004 on a schema-3 database with data', () => {
  before(async () => {
    fresh = await freshDatabase('flat_migrate');
    db = new Database({ url: fresh.url, connectionLimit: 1 });
    before3 = await mkdtemp(join(tmpdir(), 'sluice-003-'));
    for (const f of (await migrationFiles()).filter((f) => f < FILE)) await copyFile(join(MIGRATIONS_DIR, f), join(before3, f));
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
    await rm(before3, { recursive: true, force: true });
  });

  it('keeps every row and value, and puts each pending row in its lane', async () => {
    await migrate(db, before3);
    // Written with updated_at as a live database has it: the last write, before now.
    await q(
      `INSERT INTO jobs (id, queue, type, status, priority, run_at, paused, cancel_requested_at, concurrency_key, worker, updated_at, finished_at)
       VALUES
         (1, 'default', 'sleep', 'pending', 0, NOW(3) - INTERVAL 1 HOUR, FALSE, NULL, NULL, NULL, NOW(3) - INTERVAL 1 HOUR, NULL),
         (2, 'default', 'sleep', 'pending', 5, NOW(3) + INTERVAL 1 DAY, FALSE, NULL, NULL, NULL, NOW(3) - INTERVAL 1 HOUR, NULL),
         (3, 'default', 'sleep', 'pending', 0, NOW(3) - INTERVAL 1 MINUTE, FALSE, NULL, NULL, NULL, NOW(3) - INTERVAL 1 HOUR, NULL),
         (4, 'mail', 'sleep', 'pending', 0, NOW(3), TRUE, NULL, NULL, NULL, NOW(3), NULL),
         (5, 'mail', 'sleep', 'pending', 0, NOW(3), FALSE, NOW(3), NULL, NULL, NOW(3), NULL),
         (6, 'mail', 'sleep', 'running', 0, NOW(3), FALSE, NULL, 'k', 'w-1', NOW(3), NULL),
         (7, 'mail', 'sleep', 'pending', -1, NOW(3) - INTERVAL 1 SECOND, FALSE, NULL, 'k', 'w-0', NOW(3), NULL),
         (8, 'mail', 'sleep', 'done', 0, NOW(3), FALSE, NULL, NULL, 'w-1', NOW(3), NOW(3))`,
    );
    const rowsBefore = await q(`SELECT ${OLD_COLUMNS} FROM jobs ORDER BY id`);
    // From schema 3 to schema 4 only: later migrations have tests of their own.
    await copyFile(join(MIGRATIONS_DIR, FILE), join(before3, FILE));
    const applied = await migrate(db, before3);
    assert.deepEqual(applied.applied, [FILE]);
    assert.deepEqual(await q(`SELECT ${OLD_COLUMNS} FROM jobs ORDER BY id`), rowsBefore, 'every row and value as before');
    const lanes = await q('SELECT id, status, claim_lane, claim_priority, key_wait, waits_for_key FROM jobs ORDER BY id');
    assert.deepEqual(
      lanes.map((r) => [r.id, r.status, r.claim_lane, r.claim_priority, r.key_wait, r.waits_for_key]),
      [
        [1, 'pending', 0, 0, null, null],
        [2, 'pending', 1, null, null, null], // scheduled for tomorrow
        [3, 'pending', 1, null, null, null], // due since its last write: promoted by the next probe
        [4, 'pending', 3, null, null, null], // paused
        [5, 'pending', 3, null, null, null], // cancel requested
        [6, 'running', null, null, null, null],
        [7, 'pending', 0, -1, null, null], // its key is busy: the first claim parks it
        [8, 'done', null, null, null, null],
      ],
    );
    const [index] = await q("SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) AS c FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'jobs' AND index_name = 'jobs_claim'");
    assert.equal(index?.c, 'status,queue,claim_lane,claim_priority,run_at');
    const [waits] = await q("SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) AS c FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'jobs' AND index_name = 'jobs_key_waits'");
    assert.equal(waits?.c, 'waits_for_key,queue,key_wait,priority,run_at');
    const [stats] = await q("SELECT SUM(jobs) AS n FROM job_stats WHERE status = 'pending'");
    assert.equal(Number(stats?.n), 6, 'job_stats counts as before');
  });

  it('applies again, changing nothing, after a process died before recording it', async () => {
    const snapshot = await q('SELECT * FROM jobs ORDER BY id');
    await q('DELETE FROM sluice_migrations WHERE name = ?', [FILE]);
    assert.deepEqual((await migrate(db, before3)).applied, [FILE]);
    assert.deepEqual((await migrate(db, before3)).applied, [], 'and then nothing');
    assert.deepEqual(await q('SELECT * FROM jobs ORDER BY id'), snapshot);
  });
});
