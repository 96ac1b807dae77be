import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { SluiceEvents } from '../../src/events.js';
import type { Leader } from '../../src/leader/leader.js';
import { RetentionPublisher } from '../../src/publishers/retention-publisher.js';
import { count as countRows, type FreshDatabase, freshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;

function leader(is: boolean): Leader {
  return { start: () => Promise.resolve(), stop: () => Promise.resolve(), isLeader: () => is, onChange: () => undefined };
}

/** Jobs matching a WHERE clause. */
function count(where: string): Promise<number> {
  return countRows(pool, `SELECT COUNT(*) n FROM jobs WHERE ${where}`);
}

describe('retention: the leader prunes old finished jobs in small batches', () => {
  before(async () => {
    fresh = await freshDatabase('retention');
    pool = fresh.pool;
    db = new Database({ url: fresh.url, connectionLimit: 2 });
    await migrate(db);
    // 1,200 finished 10 days ago, 50 finished an hour ago, and unfinished ones of all ages.
    await pool.query(
      `INSERT INTO jobs (type, status, finished_at, created_at)
       SELECT 'sleep', ELT(1 + seq % 3, 'done', 'failed', 'cancelled'), NOW(3) - INTERVAL 10 DAY, NOW(3) - INTERVAL 10 DAY FROM seq_1_to_1200`,
    );
    await pool.query("INSERT INTO jobs (type, status, finished_at) SELECT 'sleep', 'done', NOW(3) - INTERVAL 1 HOUR FROM seq_1_to_50");
    await pool.query("INSERT INTO jobs (type, status, created_at) SELECT 'sleep', ELT(1 + seq % 3, 'pending', 'queued', 'running'), NOW(3) - INTERVAL 30 DAY FROM seq_1_to_30");
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
  });

  it('does nothing on a follower', async () => {
    const p = new RetentionPublisher({ db, leader: leader(false), retentionHours: 168, events: new SluiceEvents() });
    await p.runOnce();
    assert.equal(await count('1=1'), 1280);
  });

  it('deletes only finished rows past the retention, oldest first, batch by batch', async () => {
    const events = new SluiceEvents();
    const pruned: number[] = [];
    events.on('sweep:done', ({ count }) => pruned.push(count));
    const p = new RetentionPublisher({ db, leader: leader(true), retentionHours: 168, events, batchSize: 500, pauseMs: 7, intervalMs: 600_000 });
    assert.deepEqual(await p.runOnce(), { deleted: 500, delayMs: 7 }, 'a full batch: the next one follows after a short pause');
    assert.deepEqual(await p.runOnce(), { deleted: 500, delayMs: 7 });
    assert.deepEqual(await p.runOnce(), { deleted: 200, delayMs: 600_000 }, 'a partial batch: caught up, back to the interval');
    assert.deepEqual(pruned, [500, 500, 200]);
    assert.equal(await count('finished_at < NOW(3) - INTERVAL 1 DAY'), 0);
    assert.equal(await count("status = 'done' AND finished_at IS NOT NULL"), 50, 'recent finished rows stay');
    assert.equal(await count("status IN ('pending', 'queued', 'running')"), 30, 'unfinished rows are never pruned, however old');
  });

  it('a batch starts past the last one: rows the delete refuses do not hold the pass', async () => {
    // Set back to pending by hand with finished_at left: old enough to be read, refused by
    // the delete. Read first (oldest), they would fill every batch if it began at the head.
    await pool.query(
      "INSERT INTO jobs (type, status, finished_at) SELECT 'sleep', 'pending', NOW(3) - INTERVAL 9 DAY - INTERVAL seq SECOND FROM seq_1_to_3",
    );
    await pool.query("INSERT INTO jobs (type, status, finished_at) SELECT 'sleep', 'done', NOW(3) - INTERVAL 8 DAY - INTERVAL seq SECOND FROM seq_1_to_5");
    const p = new RetentionPublisher({ db, leader: leader(true), retentionHours: 168, events: new SluiceEvents(), batchSize: 2, pauseMs: 7 });
    const rounds = [];
    for (let i = 0; i < 5; i++) rounds.push(await p.runOnce());
    assert.deepEqual(
      rounds.map((r) => [r.deleted, r.delayMs]),
      [[0, 7], [1, 7], [2, 7], [2, 7], [0, 600_000]],
    );
    assert.equal(await count("finished_at < NOW(3) - INTERVAL 7 DAY AND status = 'done'"), 0);
    assert.equal(await count("finished_at < NOW(3) - INTERVAL 7 DAY AND status = 'pending'"), 3, 'refused rows stay');
    assert.equal((await p.runOnce()).deleted, 0, 'the next pass starts from the oldest again');
  });

  it('0 hours keeps everything', async () => {
    await pool.query("UPDATE jobs SET finished_at = NOW(3) - INTERVAL 400 DAY WHERE status = 'done'");
    const p = new RetentionPublisher({ db, leader: leader(true), retentionHours: 0, events: new SluiceEvents() });
    await p.runOnce();
    assert.equal(await count("status = 'done'"), 50);
  });
});
