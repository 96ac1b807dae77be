import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import type { Daemon } from '../../src/daemon.js';
import { closeFixtures, startDaemon, statementCount, testEnv } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { createEffectsTable, getJob, insertJob, insertJobs, type JobRow, waitFinished } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;
let daemon: Daemon;

function finished(id: number, timeoutMs?: number): Promise<JobRow> {
  return waitFinished(pool, id, timeoutMs);
}

describe('core pipeline: claim → channel → runner → outcome', () => {
  before(async () => {
    db = await freshDatabase('pipeline');
    pool = db.pool;
    daemon = await startDaemon(testEnv(db.url, { SLUICE_CONCURRENCY: '4' }));
    await createEffectsTable(pool);
  });
  after(async () => {
    await daemon?.stop();
    await closeFixtures();
    await db?.drop();
  });

  it('runs a sleep job to done and stores its result and instants', async () => {
    const id = await insertJob(pool, { type: 'sleep', payload: { ms: 20 } });
    const job = await finished(id);
    assert.equal(job.status, 'done');
    assert.deepEqual(job.result, { slept: 20 });
    assert.equal(job.attempts, 1);
    assert.equal(job.worker, daemon.config.workerId);
    assert.ok(job.queued_at && job.started_at && job.finished_at, 'queued_at, started_at and finished_at are set');
    assert.ok(job.started_at >= job.queued_at && job.finished_at >= job.started_at, 'instants in lifecycle order');
    assert.equal(job.cancelled_at, null);
  });

  it('does not start a job before its run_at', async () => {
    const later = await insertJob(pool, { runAtOffsetMs: 1500 });
    const now = await insertJob(pool, {});
    await finished(now);
    assert.equal((await getJob(pool, later)).status, 'pending', 'the scheduled job waits while a due one runs');
    const job = await finished(later);
    assert.equal(job.status, 'done');
    assert.ok(job.started_at! >= job.run_at, `started ${job.started_at} before run_at ${job.run_at}`);
  });

  it('holds a paused job and a paused queue, and runs them once resumed', async () => {
    await pool.query("INSERT INTO job_queues (name, paused) VALUES ('held', TRUE)");
    const pausedJob = await insertJob(pool, { paused: true });
    const inPausedQueue = await insertJob(pool, { queue: 'held' });
    const marker = await insertJob(pool, {});
    await finished(marker);
    // Give the publisher several more polls (50 ms each) to prove it leaves them alone.
    const polls = await statementCount(daemon, 'jobsProbe');
    await waitFor(async () => (await statementCount(daemon, 'jobsProbe')) >= polls + 4);
    assert.equal((await getJob(pool, pausedJob)).status, 'pending');
    assert.equal((await getJob(pool, inPausedQueue)).status, 'pending');
    await pool.query('UPDATE jobs SET paused = FALSE WHERE id = ?', [pausedJob]);
    await pool.query("UPDATE job_queues SET paused = FALSE WHERE name = 'held'");
    assert.equal((await finished(pausedJob)).status, 'done');
    assert.equal((await finished(inPausedQueue)).status, 'done');
  });

  it('claims lowest priority first, then oldest run_at', async () => {
    // Queue paused while rows go in, so the claim sees all of them at once.
    await pool.query("INSERT INTO job_queues (name, paused) VALUES ('order', TRUE)");
    const ids = await insertJobs(pool, [
      { queue: 'order', type: 'record', priority: 5, runAtOffsetMs: -3000 },
      { queue: 'order', type: 'record', priority: 0, runAtOffsetMs: -1000 },
      { queue: 'order', type: 'record', priority: 0, runAtOffsetMs: -2000 },
      { queue: 'order', type: 'record', priority: -1, runAtOffsetMs: 0 },
    ]);
    await pool.query("UPDATE job_queues SET rate_per_sec = NULL, concurrency = 1, paused = FALSE WHERE name = 'order'");
    for (const id of ids) await finished(id);
    const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT job_id FROM effects WHERE job_id IN (?) ORDER BY seq', [ids]);
    assert.deepEqual(
      rows.map((r) => Number(r.job_id)),
      [ids[3], ids[2], ids[1], ids[0]],
    );
  });

  it('retries a failed attempt with backoff, then completes', async () => {
    const id = await insertJob(pool, { type: 'flaky', payload: { succeedOn: 2 }, maxAttempts: 3 });
    const afterFirst = await waitFor(async () => {
      const j = await getJob(pool, id);
      return j.attempts === 1 && j.status === 'pending' ? j : undefined;
    });
    assert.match(afterFirst.error ?? '', /flaky failure on attempt 1/);
    assert.ok(afterFirst.run_at > afterFirst.started_at!, 'retry is scheduled after the failed start');
    const [[delay]] = await pool.query<mysql.RowDataPacket[]>(
      'SELECT TIMESTAMPDIFF(MICROSECOND, finished_at_or_now, run_at) / 1000 AS ms FROM (SELECT run_at, NOW(3) AS finished_at_or_now FROM jobs WHERE id = ?) x',
      [id],
    );
    assert.ok(Number(delay?.ms) > 200 && Number(delay?.ms) <= 2100, `first backoff ~1–2 s, got ${delay?.ms} ms`);
    const done = await finished(id, 15_000);
    assert.equal(done.status, 'done');
    assert.equal(done.attempts, 2);
    assert.deepEqual(done.result, { ok: 2 });
  });

  it('fails a job once its attempts are used up', async () => {
    const id = await insertJob(pool, { type: 'flaky', payload: {}, maxAttempts: 1 });
    const job = await finished(id);
    assert.equal(job.status, 'failed');
    assert.equal(job.attempts, 1);
    assert.match(job.error ?? '', /flaky failure on attempt 1/);
    assert.ok(job.finished_at);
  });

  it('an error marked permanent by a handler module fails the job at once', async () => {
    const job = await finished(await insertJob(pool, { type: 'refuse', payload: {}, maxAttempts: 5 }));
    assert.equal(job.status, 'failed');
    assert.equal(job.attempts, 1);
    assert.match(job.error ?? '', /refused: nothing to retry/);
  });

  it('cancels a run past its timeout as dead, without retrying it', async () => {
    const id = await insertJob(pool, { payload: { ms: null }, timeoutMs: 300, maxAttempts: 3 });
    const job = await finished(id);
    assert.equal(job.status, 'cancelled');
    assert.match(job.error ?? '', /timed out after 300 ms/);
    assert.ok(job.cancelled_at && job.finished_at);
    assert.equal(job.attempts, 1, 'a dead run is not retried');
  });

  it("uses the queue's timeout when the job has none", async () => {
    await pool.query("INSERT INTO job_queues (name, timeout_ms) VALUES ('slowq', 250)");
    const id = await insertJob(pool, { queue: 'slowq', payload: { ms: null } });
    const job = await finished(id);
    assert.equal(job.status, 'cancelled');
    assert.match(job.error ?? '', /timed out after 250 ms/);
  });

  it('fails an unknown type with an error naming it, and the daemon goes on', async () => {
    const bad = await insertJob(pool, { type: 'no-such-type' });
    const good = await insertJob(pool, {});
    const job = await finished(bad);
    assert.equal(job.status, 'failed');
    assert.match(job.error ?? '', /no handler for job type "no-such-type"/);
    assert.equal(job.attempts, 1, 'no retry for an unknown type');
    assert.equal((await finished(good)).status, 'done');
  });

  it('fails a payload of the wrong shape with a clear error', async () => {
    const ids = await insertJobs(pool, [{ payload: { ms: 'soon' } }, { payload: [1, 2] }, { payload: null }]);
    for (const id of ids) {
      const job = await finished(id);
      assert.equal(job.status, 'failed');
      assert.match(job.error ?? '', /sleep: /);
      assert.equal(job.attempts, 1);
    }
  });

  it('fails a job whose result JSON cannot hold', async () => {
    const job = await finished(await insertJob(pool, { type: 'circular', payload: {} }));
    assert.equal(job.status, 'failed');
    assert.match(job.error ?? '', /not JSON-serialisable/);
  });

  it('writes progress throttled: a handler reporting 101 times costs at most two writes', async () => {
    const statements = () => statementCount(daemon, 'jobsSetProgress');
    const before = await statements();
    const id = await insertJob(pool, { type: 'chatty', payload: { ms: 1300 } });
    await waitFor(async () => (await getJob(pool, id)).progress === 100, { message: 'progress reached 100' });
    const job = await finished(id);
    assert.equal(job.status, 'done');
    const writes = (await statements()) - before;
    assert.ok(writes >= 1 && writes <= 2, `expected 1–2 progress writes, got ${writes}`);
  });
});
