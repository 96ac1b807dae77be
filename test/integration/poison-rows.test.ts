// No single row stops a replica (issue #11). Each test reproduces a row or setting that
// stopped or wedged a replica before the fix; every later job must still reach `done`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { StateWriter } from '../../src/consumers/state-writer.js';
import type { Daemon } from '../../src/daemon.js';
import { Database } from '../../src/db/database.js';
import { jobsMarkQueued } from '../../src/db/queries/jobs-claim.js';
import type { Outcome } from '../../src/db/queries/jobs-outcome.js';
import { jobsRescueOf } from '../../src/db/queries/jobs-rescue.js';
import { MAX_PAYLOAD_BYTES } from '../../src/limits.js';
import { createLogger } from '../../src/observability/logger.js';
import { closeFixtures, startDaemon, testEnv } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { createEffectsTable, getJob, insertJob, insertJobs, waitFinished } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;
let daemon: Daemon;

/** Inserts `ok` marker jobs after a bad one: they must all reach done. */
async function laterJobsRun(n = 3): Promise<void> {
  const ids = await insertJobs(pool, Array.from({ length: n }, () => ({ type: 'sleep', payload: { ms: 0 } })));
  for (const id of ids) assert.equal((await waitFinished(pool, id)).status, 'done', `job ${id} inserted after the bad one`);
}

describe('poison rows and outcomes', () => {
  before(async () => {
    db = await freshDatabase('poison');
    pool = db.pool;
    await createEffectsTable(pool);
    daemon = await startDaemon(testEnv(db.url, { SLUICE_CONCURRENCY: '4' }));
  });
  after(async () => {
    await daemon?.stop();
    await closeFixtures();
    await db?.drop();
  });

  it('an error message cut inside an emoji fails its job readably and wedges nothing', async () => {
    const id = await insertJob(pool, { type: 'throwEmoji', maxAttempts: 1 });
    const job = await waitFinished(pool, id);
    assert.equal(job.status, 'failed');
    assert.ok(job.error?.endsWith('😀 tail'), 'the whole message, emoji intact');
    assert.ok(job.error?.isWellFormed());
    await laterJobsRun();
  });

  it('a result nested deeper than the server stores fails the job saying so', async () => {
    const id = await insertJob(pool, { type: 'deep', payload: { depth: 40 } });
    const job = await waitFinished(pool, id);
    assert.equal(job.status, 'failed');
    assert.match(job.error ?? '', /could not be stored: nested deeper than 31 levels/);
    assert.equal(job.attempts, 1, 'not retried: the same handler would return the same result');
    await laterJobsRun();
  });

  it('a result larger than the limit fails the job saying so', async () => {
    const id = await insertJob(pool, { type: 'huge', payload: { bytes: 2_000_000 } });
    const job = await waitFinished(pool, id);
    assert.equal(job.status, 'failed');
    assert.match(job.error ?? '', /more than the 1048576-byte limit/);
    await laterJobsRun();
  });

  it('lone surrogates in a result are stored well-formed', async () => {
    const id = await insertJob(pool, { type: 'lone' });
    const job = await waitFinished(pool, id);
    assert.equal(job.status, 'done');
    assert.deepEqual(job.result, { text: 'a\ufffdb', 'k\ufffd': 'v', ok: 'ok😀' });
  });

  it('retryAfterMs of 30,000 years is clamped: run_at stays within a year', async () => {
    const id = await insertJob(pool, { type: 'retryFar', maxAttempts: 3 });
    const row = await waitFinishedOrPending(id);
    assert.equal(row.status, 'pending');
    assert.equal(row.attempts, 1);
    assert.ok(row.days_ahead > 360 && row.days_ahead <= 366, `run_at ${row.days_ahead} days ahead`);
    await laterJobsRun();
  });

  it('attempts at INT max fail the job without running it; the rescue backoff survives 1,500 attempts', async () => {
    const [r] = await pool.query<mysql.ResultSetHeader>(
      "INSERT INTO jobs (type, payload, attempts, max_attempts) VALUES ('record', '{}', 2147483647, 2147483647)",
    );
    const job = await waitFinished(pool, r.insertId);
    assert.equal(job.status, 'failed');
    assert.match(job.error ?? '', /at the counter's limit; no handler ran/);
    const [effects] = await pool.query<mysql.RowDataPacket[]>('SELECT * FROM effects WHERE job_id = ?', [r.insertId]);
    assert.equal(effects.length, 0);

    // POW(2, 1500) is out of DOUBLE range: the exponent is capped before it.
    const [g] = await pool.query<mysql.ResultSetHeader>(
      "INSERT INTO jobs (type, status, worker, attempts, max_attempts, started_at) VALUES ('sleep', 'running', 'ghost', 1500, 2000, NOW(3))",
    );
    const database = new Database({ url: db.url, connectionLimit: 1 });
    try {
      assert.deepEqual(await jobsRescueOf(database, ['ghost'], 'test rescue'), { requeued: 0, rescued: 1 });
    } finally {
      await database.end();
    }
    const [rows] = await pool.query<mysql.RowDataPacket[]>(
      'SELECT status, TIMESTAMPDIFF(SECOND, NOW(3), run_at) AS ahead FROM jobs WHERE id = ?',
      [g.insertId],
    );
    assert.equal(rows[0]?.status, 'pending');
    assert.ok(Number(rows[0]?.ahead) <= 3600);
    await pool.query("UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?", [g.insertId]);
    await laterJobsRun();
  });

  it('a payload over the limit fails its job before any handler runs; a large one under it runs', async () => {
    const [big] = await pool.query<mysql.ResultSetHeader>(
      "INSERT INTO jobs (type, payload, max_attempts) VALUES ('payloadSize', JSON_OBJECT('blob', REPEAT('x', ?)), 3)",
      [MAX_PAYLOAD_BYTES + 10],
    );
    const [ok] = await pool.query<mysql.ResultSetHeader>(
      "INSERT INTO jobs (type, payload) VALUES ('payloadSize', JSON_OBJECT('blob', REPEAT('y', 1000000)))",
    );
    const failed = await waitFinished(pool, big.insertId);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /payload is \d+ bytes, more than the 8388608-byte limit; no handler ran/);
    assert.equal(failed.attempts, 0);
    const done = await waitFinished(pool, ok.insertId);
    assert.equal(done.status, 'done', `the 1 MB payload was read at start: ${done.error}`);
    assert.ok((done.result as { chars: number }).chars > 1_000_000);
    await laterJobsRun();
  });

  it('types without a handler count as `unregistered` in metrics, not as a label of their own', async () => {
    const id = await insertJob(pool, { type: 'no-such-type-42', maxAttempts: 1 });
    assert.equal((await waitFinished(pool, id)).status, 'failed');
    const text = await daemon.metrics.registry.getSingleMetricAsString('sluice_jobs_finished_total');
    assert.doesNotMatch(text, /no-such-type-42/);
    assert.match(text, /type="unregistered"/);
  });
});

/** The row of a job retried far ahead, with how many days ahead its run_at is. */
async function waitFinishedOrPending(id: number): Promise<{ status: string; attempts: number; days_ahead: number }> {
  return waitFor(async () => {
    const [rows] = await pool.query<mysql.RowDataPacket[]>(
      'SELECT status, attempts, TIMESTAMPDIFF(DAY, NOW(3), run_at) AS days_ahead FROM jobs WHERE id = ? AND attempts >= 1',
      [id],
    );
    const r = rows[0];
    return r && r.status === 'pending' ? { status: r.status as string, attempts: Number(r.attempts), days_ahead: Number(r.days_ahead) } : undefined;
  });
}

describe('the outcome writer isolates a refused item', () => {
  let wdb: FreshDatabase;
  before(async () => {
    wdb = await freshDatabase('poison_writer');
    const d = new Database({ url: wdb.url, connectionLimit: 2 });
    const { migrate } = await import('../../src/db/migrate.js');
    await migrate(d);
    await d.end();
  });
  after(async () => wdb?.drop());

  it('writes the good outcomes of a batch and fails the one the server refuses', async () => {
    const ids = await insertJobs(wdb.pool, Array.from({ length: 9 }, () => ({})));
    const database = new Database({ url: wdb.url, connectionLimit: 2 });
    const writer = new StateWriter({ db: database, worker: 'w1', logger: createLogger('silent', {}), finishDelayMs: 50 });
    try {
      assert.equal(await jobsMarkQueued(database, 'w1', ids), 9);
      // Bypasses the encoder as a bug would: invalid JSON text for one result.
      const outcomes: Outcome[] = ids.map((id, i) => ({
        id,
        attempts: 0,
        from: 'queued',
        status: 'done',
        started: true,
        startedAt: performance.now(),
        result: i === 4 ? '{"broken": "\\ud800"}' : JSON.stringify({ i }),
      }));
      await Promise.all(outcomes.map((o) => writer.finish(o)));
      for (const [i, id] of ids.entries()) {
        const job = await getJob(wdb.pool, id);
        if (i === 4) {
          assert.equal(job.status, 'failed');
          assert.match(job.error ?? '', /the outcome could not be stored: CONSTRAINT `jobs.result` failed/);
          assert.equal(job.attempts, 1, 'the run still counts');
        } else {
          assert.equal(job.status, 'done');
          assert.deepEqual(job.result, { i });
        }
      }
    } finally {
      writer.close();
      await database.end();
    }
  });
});

describe('a rate below one start a second', () => {
  let rdb: FreshDatabase;
  let slow: Daemon;
  before(async () => {
    rdb = await freshDatabase('poison_rate');
    slow = await startDaemon(testEnv(rdb.url, { SLUICE_RATE: '0.5' }));
  });
  after(async () => {
    await slow?.stop();
    await rdb?.drop();
  });

  it('SLUICE_RATE=0.5 still starts jobs (the bucket holds at least one token)', async () => {
    assert.equal(slow.config.burst, 1);
    const ids = await insertJobs(rdb.pool, [{}, {}]);
    for (const id of ids) assert.equal((await waitFinished(rdb.pool, id, 20_000)).status, 'done');
  });
});
