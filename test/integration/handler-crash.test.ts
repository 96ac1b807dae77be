// A handler module whose callback throws where nothing can catch it (issue #11): the
// process must not die with every job it holds counted as a failed attempt.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { spawnDaemon, testEnv, waitForWorker } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { getJob, insertJob, insertJobs } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;

describe('an uncaught exception from a handler module (real child process)', () => {
  before(async () => {
    db = await freshDatabase('crash');
    pool = db.pool;
  });
  after(async () => db?.drop());

  it('fails the culprit attempt, hands the other jobs back uncounted, logs the job id and exits 1', async () => {
    const daemon = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'crashy', SLUICE_CONCURRENCY: '4', LOG_LEVEL: 'warn' }));
    await waitForWorker(pool, 'crashy');
    const bystanders = await insertJobs(pool, [
      { type: 'sleep', payload: { ms: 20_000 } },
      { type: 'sleep', payload: { ms: 20_000 } },
    ]);
    await waitFor(async () => (await Promise.all(bystanders.map((id) => getJob(pool, id)))).every((j) => j.status === 'running'), {
      message: 'bystanders running',
    });
    const culprit = await insertJob(pool, { type: 'throwLater', maxAttempts: 3 });

    assert.equal(await daemon.exited, 1, daemon.output());
    assert.match(daemon.output(), new RegExp(`"job_id":${culprit}.*uncaught exception`));

    const bad = await getJob(pool, culprit);
    assert.equal(bad.status, 'pending', 'retried later, like any failed attempt');
    assert.equal(bad.attempts, 1);
    assert.match(bad.error ?? '', /crashed its process \(uncaught exception\): kaboom from a timer/);
    for (const id of bystanders) {
      const job = await getJob(pool, id);
      assert.equal(job.status, 'pending');
      assert.equal(job.attempts, 0, 'a bystander is not charged an attempt');
      assert.match(job.error ?? '', /handed back: worker crashy shut down/);
    }
    const [rows] = await pool.query<mysql.RowDataPacket[]>("SELECT id FROM job_workers WHERE id = 'crashy'");
    assert.equal(rows.length, 0, 'everything was handed back, so the worker row is gone');
  });
});
