import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { jobsFinish } from '../../src/db/queries/jobs-outcome.js';
import { jobsRescueOf } from '../../src/db/queries/jobs-rescue.js';
import { jobsMarkRunning } from '../../src/db/queries/jobs-run.js';
import type { Daemon } from '../../src/daemon.js';
import { closeFixtures, startDaemon, testEnv } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { createEffectsTable, getJob, insertJob } from '../helpers/factory.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;

describe('fencing: a late answer changes nothing', () => {
  before(async () => {
    fresh = await freshDatabase('fencing');
    pool = fresh.pool;
    // The daemon's migrations create the tables; a short-lived daemon does it here.
    const d = await startDaemon(testEnv(fresh.url, { SLUICE_QUEUES: 'nothing-here' }));
    await d.stop();
    await createEffectsTable(pool);
    db = new Database({ url: fresh.url, connectionLimit: 2 });
  });
  after(async () => {
    await db?.end();
    await closeFixtures();
    await fresh?.drop();
  });

  it('writes are conditional on (id, worker, attempts, status)', async () => {
    const id = await insertJob(pool, {});
    await pool.query("UPDATE jobs SET status = 'queued', worker = 'w1' WHERE id = ?", [id]);
    assert.equal(await jobsMarkRunning(db, 'w2', [{ id, attempts: 0 }]), 0, 'another worker cannot start it');
    assert.equal(await jobsMarkRunning(db, 'w1', [{ id, attempts: 5 }]), 0, 'a stale attempt cannot start it');
    assert.equal(await jobsMarkRunning(db, 'w1', [{ id, attempts: 0 }]), 1);
    assert.equal(await jobsMarkRunning(db, 'w1', [{ id, attempts: 0 }]), 0, 'starting twice is a no-op');

    const late = { id, attempts: 1, from: 'running' as const, status: 'done' as const, result: '"late"' };
    assert.equal(await jobsFinish(db, { worker: 'w2', outcomes: [late] }), 0, 'another worker cannot finish it');
    assert.equal(await jobsFinish(db, { worker: 'w1', outcomes: [{ ...late, attempts: 2 }] }), 0, 'another attempt cannot finish it');
    await jobsRescueOf(db, ['w1'], 'worker died');
    assert.equal((await getJob(pool, id)).status, 'pending');
    assert.equal(await jobsFinish(db, { worker: 'w1', outcomes: [late] }), 0, 'a rescued run cannot finish it');
    const job = await getJob(pool, id);
    assert.equal(job.status, 'pending');
    assert.equal(job.result, null);
  });

  it('one batched write fences and fills each row with its own values, a job twice in it included', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push(await insertJob(pool, {}));
    // Running on their 1st, 2nd, 3rd and 4th attempts.
    for (const [i, id] of ids.entries()) await pool.query("UPDATE jobs SET status = 'running', worker = 'wb', attempts = ? WHERE id = ?", [i + 1, id]);
    const [a, b, c, d] = ids as [number, number, number, number];
    const failed = (id: number, attempts: number, error: string) => ({ id, attempts, from: 'running' as const, status: 'failed' as const, error });
    // Out of id order, c's outcome from a stale attempt, and d twice: a late answer of attempt 3 beside attempt 4's.
    const n = await jobsFinish(db, {
      worker: 'wb',
      outcomes: [failed(d, 4, 'd broke'), failed(b, 2, 'b broke'), failed(c, 1, 'stale'), failed(a, 1, 'a broke'), failed(d, 3, 'late')],
    });
    assert.equal(n, 3, 'a, b and d; not c (its attempt is 3), not d again');
    const got = new Map((await pool.query<mysql.RowDataPacket[]>('SELECT id, status, error FROM jobs WHERE id IN (?)', [ids]))[0].map((r) => [Number(r.id), r]));
    assert.deepEqual(
      ids.map((id) => [got.get(id)?.status, got.get(id)?.error]),
      [['failed', 'a broke'], ['failed', 'b broke'], ['running', null], ['failed', 'd broke']],
    );
  });

  it('forced race: the row is rescued and completed by another worker while the handler runs', async () => {
    // A long poll keeps the held-jobs check from noticing first, so the late write is
    // really attempted and must be stopped by the fence itself.
    const daemon: Daemon = await startDaemon(testEnv(fresh.url, { SLUICE_POLL_MS: '4000', SLUICE_WORKER_ID: 'fenced' }));
    try {
      const id = await insertJob(pool, { type: 'stubborn', payload: { ms: 1200 } });
      daemon.metrics.dbStatements.reset();
      await waitFor(async () => (await getJob(pool, id)).status === 'running', { timeoutMs: 8000 });
      // The leader's rescue, then another worker's whole run, while 'fenced' still runs.
      await jobsRescueOf(db, ['fenced'], 'worker died');
      await pool.query(
        "UPDATE jobs SET status = 'done', worker = 'other', attempts = 2, result = '\"from other\"', finished_at = NOW(3) WHERE id = ?",
        [id],
      );
      // The stubborn handler answers late; its outcome write is attempted and fenced out.
      await waitFor(async () => {
        const [r] = await pool.query<mysql.RowDataPacket[]>("SELECT 1 FROM effects WHERE job_id = ? AND what = 'late-answer'", [id]);
        return r.length > 0;
      });
      await waitFor(async () => /statement="jobsFinish"} [1-9]/.test(await daemon.metrics.registry.getSingleMetricAsString('sluice_db_statements_total')), {
        message: 'the late outcome write was sent',
      });
      const job = await getJob(pool, id);
      assert.equal(job.status, 'done');
      assert.equal(job.worker, 'other');
      assert.equal(job.result, 'from other');
      assert.equal(job.attempts, 2);
    } finally {
      await daemon.stop();
    }
  });
});
