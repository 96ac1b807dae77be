// The leader's dead-replica sweep, one runOnce() at a time: it goes batch by batch (dead
// workers by id, their jobs by id, each batch one transaction) until a short batch, and
// returns what it changed. Rescued runs get the backoff of any failed attempt.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { retryDelayMs } from '../../src/backoff.js';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { SluiceEvents } from '../../src/events.js';
import type { Leader } from '../../src/leader/leader.js';
import { DeadJobsPublisher } from '../../src/publishers/dead-jobs-publisher.js';
import { SweepSignals } from '../../src/publishers/sweep-signals.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;
const statements: string[] = [];

const DEAD_AFTER_MS = 1000;

function leader(is: boolean): Leader {
  return { start: () => Promise.resolve(), stop: () => Promise.resolve(), isLeader: () => is, onChange: () => undefined };
}

async function rows(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  return (await pool.query<mysql.RowDataPacket[]>(sql, params))[0];
}

/** `n` running (or queued) jobs of `worker`, started a minute ago, last touched an hour ago. */
async function held(worker: string, n: number, opts: { status?: string; attempts?: number; maxAttempts?: number; timeoutMs?: number } = {}): Promise<void> {
  await pool.query(
    `INSERT INTO jobs (type, status, worker, attempts, max_attempts, timeout_ms, started_at, queued_at, updated_at)
     SELECT 'sleep', ?, ?, ?, ?, ?, NOW(3) - INTERVAL 1 MINUTE, NOW(3) - INTERVAL 1 MINUTE, NOW(3) - INTERVAL 1 HOUR FROM seq_1_to_${n}`,
    [opts.status ?? 'running', worker, opts.attempts ?? 2, opts.maxAttempts ?? 3, opts.timeoutMs ?? null],
  );
}

/** A sweeper past its hold-off, with batches of two. */
function sweeper(isLeader: boolean, events = new SluiceEvents(), signals?: SweepSignals): DeadJobsPublisher {
  let clock = 0;
  const p = new DeadJobsPublisher({
    db,
    leader: leader(isLeader),
    worker: 'me',
    intervalMs: 5000,
    deadAfterMs: DEAD_AFTER_MS,
    defaultTimeoutMs: 900_000,
    events,
    now: () => clock,
    workerBatch: 2,
    jobBatch: 2,
    signals,
  });
  clock = DEAD_AFTER_MS + 1;
  return p;
}

describe('dead-jobs sweep: batched by id, returns what it did', () => {
  before(async () => {
    fresh = await freshDatabase('dead_jobs_sweep');
    pool = fresh.pool;
    db = new Database({ url: fresh.url, connectionLimit: 2, onStatement: (name) => statements.push(name) });
    await migrate(db);
    // Dead: dead-a, dead-b, dead-c, and this replica's own row (never judged by itself).
    await pool.query(
      `INSERT INTO job_workers (id, host, pid, version, queues, started_at, heartbeat_at) VALUES
       ('dead-a', 'h', 1, 't', '*', NOW(3), NOW(3) - INTERVAL 1 HOUR), ('dead-b', 'h', 1, 't', '*', NOW(3), NOW(3) - INTERVAL 1 HOUR),
       ('dead-c', 'h', 1, 't', '*', NOW(3), NOW(3) - INTERVAL 1 HOUR), ('me', 'h', 1, 't', '*', NOW(3), NOW(3) - INTERVAL 1 HOUR),
       ('alive', 'h', 1, 't', '*', NOW(3), NOW(3))`,
    );
    await held('dead-a', 5);
    await held('dead-a', 3, { status: 'queued' });
    await held('dead-b', 4, { attempts: 3, maxAttempts: 3 });
    await held('ghost', 2); // no job_workers row at all
    await held('me', 1);
    await held('alive', 2);
    await held('alive', 3, { timeoutMs: 1000 }); // far past its timeout: the backstop cancels it
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
  });

  it('does nothing on a follower', async () => {
    statements.length = 0;
    assert.deepEqual(await sweeper(false).runOnce(), { rescued: 0, requeued: 0, workers: 0, timedOut: 0, delayMs: 5000 });
    assert.deepEqual(statements, []);
  });

  it('rescues every dead worker\'s jobs and the orphans, in transactions of two rows, and says so', async () => {
    const events = new SluiceEvents();
    const swept: Array<[string, number]> = [];
    events.on('sweep:done', ({ sweep, count }) => swept.push([sweep, count]));
    const t0 = String((await rows('SELECT NOW(3) AS t'))[0]?.t);
    statements.length = 0;
    const round = await sweeper(true, events).runOnce();
    const t1 = String((await rows('SELECT NOW(3) AS t'))[0]?.t);

    assert.deepEqual(round, { rescued: 5 + 4 + 2, requeued: 3, workers: 3, timedOut: 3, delayMs: 5000 });
    assert.deepEqual(swept, [['rescued', 11], ['requeued', 3], ['timed_out', 3]]);
    // dead-a and dead-b (12 jobs): 6 transactions; dead-c and me: none; ghost: 1.
    assert.equal(statements.filter((s) => s === 'jobsRescueBegin').length, 7);
    assert.equal(statements.filter((s) => s === 'jobsCancelOverdueBegin').length, 2, 'three overdue jobs: two batches');

    const byWorker = await rows(
      `SELECT SUBSTRING_INDEX(SUBSTRING_INDEX(error, '(worker ', -1), ',', 1) AS w, status, COUNT(*) AS n FROM jobs
       WHERE error LIKE 'worker died%' GROUP BY w, status ORDER BY w, status`,
    );
    assert.deepEqual(
      byWorker.map((r) => [r.w, r.status, Number(r.n)]),
      [['dead-a', 'pending', 5], ['dead-b', 'failed', 4], ['ghost', 'pending', 2]],
    );
    assert.equal((await rows("SELECT COUNT(*) AS n FROM jobs WHERE status = 'pending' AND error IS NULL"))[0]?.n, 3, 'queued jobs back unchanged');
    assert.deepEqual(
      (await rows("SELECT worker, status, COUNT(*) AS n FROM jobs WHERE worker IN ('me', 'alive') GROUP BY worker, status ORDER BY worker, status")).map((r) => [
        r.worker,
        r.status,
        Number(r.n),
      ]),
      [['alive', 'cancelled', 3], ['alive', 'running', 2], ['me', 'running', 1]],
    );
    assert.deepEqual((await rows('SELECT id FROM job_workers ORDER BY id')).map((r) => r.id), ['alive', 'me']);

    // Attempt 2 failed: retried 2–4 s later, as a thrown error would be.
    const [span] = await rows(
      `SELECT MIN(TIMESTAMPDIFF(MICROSECOND, ?, run_at)) / 1000 AS lo, MAX(TIMESTAMPDIFF(MICROSECOND, ?, run_at)) / 1000 AS hi
       FROM jobs WHERE status = 'pending' AND error LIKE 'worker died%'`,
      [t0, t1],
    );
    assert.ok(Number(span?.lo) >= retryDelayMs(2, { random: () => 0 }), JSON.stringify(span));
    assert.ok(Number(span?.hi) <= retryDelayMs(2, { random: () => 1 }), JSON.stringify(span));
  });

  it('when the probe saw no dead worker and no overdue job, the once-per-span orphan check is its only statement', async () => {
    const signals = new SweepSignals(60_000);
    signals.update({ deadWorkers: false, overdue: false });
    statements.length = 0;
    await sweeper(true, new SluiceEvents(), signals).runOnce();
    assert.deepEqual(statements, ['jobsSelectOrphanWorkers']);
  });

  it('a sweep that finds nothing says so', async () => {
    assert.deepEqual(await sweeper(true).runOnce(), { rescued: 0, requeued: 0, workers: 0, timedOut: 0, delayMs: 5000 });
  });
});
