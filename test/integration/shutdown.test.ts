import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { spawnDaemon, testEnv, waitForWorker } from '../helpers/daemon.js';
import { type FreshDatabase, freshDatabase, queriesOn, waitFor } from '../helpers/database.js';
import { getJob, insertJobs, jobsByStatus } from '../helpers/factory.js';
import { PartitionProxy } from '../helpers/proxy.js';

let db: FreshDatabase;
let pool: mysql.Pool;

const { count } = queriesOn(() => pool);

describe('graceful shutdown (real child process, real SIGTERM)', () => {
  before(async () => {
    db = await freshDatabase('shutdown');
    pool = db.pool;
  });
  after(async () => db?.drop());

  it('a stop while the database is unreachable ends the start-up backoff at once and exits 0', async () => {
    // Nothing listens on port 1: every try fails at once and the backoff doubles.
    const daemon = spawnDaemon(testEnv('mysql://root@127.0.0.1:1/sluice', { SLUICE_WORKER_ID: 'never-up', LOG_LEVEL: 'debug' }));
    // The fifth failure waits 4 s (± 25 %) before the sixth try.
    await daemon.waitForOutput('"failures":5', 20_000);
    const waiting = Number(/"failures":5,"retry_in_ms":(\d+)/.exec(daemon.output())?.[1]);
    assert.ok(waiting >= 3000, `the pending wait is ${waiting} ms`);
    const stopAt = Date.now();
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0, daemon.output());
    const took = Date.now() - stopAt;
    assert.ok(took < waiting, `exited ${took} ms after SIGTERM, before the ${waiting} ms wait was over`);
    assert.doesNotMatch(daemon.output(), /"failures":6/, 'no try after the stop');
  });

  it('hands queued jobs back at once, lets running ones finish within the grace, exits 0', async () => {
    const daemon = spawnDaemon(
      testEnv(db.url, { SLUICE_WORKER_ID: 'graceful-1', SLUICE_CONCURRENCY: '2', SLUICE_PREFETCH: '10', SLUICE_SHUTDOWN_GRACE_MS: '10000' }),
    );
    await waitForWorker(pool, 'graceful-1');
    // Two slots: two 800 ms jobs run, the rest wait in the channel as `queued`.
    const ids = await insertJobs(pool, Array.from({ length: 8 }, () => ({ type: 'sleep', payload: { ms: 800 } })));
    await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE status = 'running'")) === 2, { message: 'two running' });
    assert.ok((await count("SELECT COUNT(*) n FROM jobs WHERE status = 'queued' AND worker = 'graceful-1'")) >= 1, 'some are queued');

    daemon.proc.kill('SIGTERM');
    // Queued jobs go back while the running ones still run.
    await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE status = 'queued'")) === 0, { message: 'queued handed back', timeoutMs: 3000 });
    const runningWhenHandedBack = await count("SELECT COUNT(*) n FROM jobs WHERE status = 'running'");

    assert.equal(await daemon.exited, 0, daemon.output());
    assert.equal(runningWhenHandedBack, 2, 'running jobs kept running after the queued ones were handed back');
    const byStatus = await jobsByStatus(pool);
    assert.equal(byStatus.done, 2, `the two running jobs finished: ${JSON.stringify(byStatus)}`);
    assert.equal(byStatus.pending, ids.length - 2);
    assert.equal(byStatus.queued, undefined);
    assert.equal(byStatus.running, undefined);
    // Handed-back jobs are unchanged: no attempt counted.
    assert.equal(await count("SELECT COUNT(*) n FROM jobs WHERE status = 'pending' AND attempts = 0"), ids.length - 2);
    assert.equal(await count("SELECT COUNT(*) n FROM job_workers WHERE id = 'graceful-1'"), 0, 'worker row removed');
  });

  it('after the grace period aborts running jobs and hands them back without counting the attempt', async () => {
    await pool.query('DELETE FROM jobs');
    const daemon = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'graceful-2', SLUICE_SHUTDOWN_GRACE_MS: '300' }));
    await waitForWorker(pool, 'graceful-2');
    const [stuck] = await insertJobs(pool, [{ type: 'sleep', payload: { ms: null }, maxAttempts: 1 }]);
    await waitFor(async () => (await getJob(pool, stuck!)).status === 'running', { message: 'stuck job running' });
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0, daemon.output());
    const job = await getJob(pool, stuck!);
    assert.equal(job.status, 'pending');
    assert.equal(job.attempts, 0, 'the interrupted attempt is not counted');
    assert.match(job.error ?? '', /handed back: worker graceful-2 shut down/);
    assert.equal(await count("SELECT COUNT(*) n FROM jobs WHERE status IN ('queued', 'running')"), 0);
  });

  it('a second daemon picks the handed-back job up and finishes it', async () => {
    await pool.query("UPDATE jobs SET payload = JSON_OBJECT('ms', 10) WHERE status = 'pending'");
    const daemon = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'graceful-3' }));
    await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE status <> 'done'")) === 0, { message: 'all done' });
    daemon.proc.kill('SIGINT');
    assert.equal(await daemon.exited, 0);
  });

  it('a stop during a database blip that cannot hand jobs back exits non-zero and keeps its worker row; the leader returns the jobs', async () => {
    await pool.query('DELETE FROM jobs');
    const target = new URL(db.url);
    const proxy = await PartitionProxy.start({ host: target.hostname, port: Number(target.port || 3306) });
    try {
      const blipped = spawnDaemon(
        testEnv(proxy.url(db.url), { SLUICE_WORKER_ID: 'blip-1', SLUICE_CONCURRENCY: '2', SLUICE_PREFETCH: '10', SLUICE_SHUTDOWN_GRACE_MS: '300' }),
      );
      await waitForWorker(pool, 'blip-1');
      const ids = await insertJobs(pool, Array.from({ length: 6 }, () => ({ type: 'sleep', payload: { ms: 5000 } })));
      await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE worker = 'blip-1' AND status = 'running'")) === 2, {
        message: 'two running under blip-1',
      });
      proxy.cut();
      blipped.proc.kill('SIGTERM');
      assert.equal(await blipped.exited, 1, `exit code says not everything was handed back:\n${blipped.output()}`);
      assert.equal(await count("SELECT COUNT(*) n FROM job_workers WHERE id = 'blip-1'"), 1, 'the worker row stays for the leader');
      assert.ok((await count("SELECT COUNT(*) n FROM jobs WHERE worker = 'blip-1' AND status IN ('queued', 'running')")) > 0, 'jobs still held');

      // Another replica leads, finds blip-1 dead, and every job ends done.
      const rescuer = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'rescuer', SLUICE_CONCURRENCY: '6' }));
      await pool.query("UPDATE jobs SET payload = JSON_OBJECT('ms', 10)");
      await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE status = 'done'")) === ids.length, {
        message: 'all jobs done after the rescue',
        timeoutMs: 20_000,
      });
      assert.equal(await count("SELECT COUNT(*) n FROM job_workers WHERE id = 'blip-1'"), 0, 'the dead row is removed');
      rescuer.proc.kill('SIGTERM');
      assert.equal(await rescuer.exited, 0);
    } finally {
      await proxy.close();
    }
  });

  it('jobs held under a worker id that has no row at all are rescued by the leader', async () => {
    await pool.query('DELETE FROM jobs');
    const ids = await insertJobs(pool, [{ type: 'sleep', payload: { ms: 10 } }, { type: 'sleep', payload: { ms: 10 } }]);
    await pool.query("UPDATE jobs SET status = 'queued', worker = 'vanished', queued_at = NOW(3), updated_at = NOW(3) - INTERVAL 1 MINUTE WHERE id = ?", [ids[0]]);
    await pool.query(
      "UPDATE jobs SET status = 'running', worker = 'vanished', attempts = 1, started_at = NOW(3), updated_at = NOW(3) - INTERVAL 1 MINUTE WHERE id = ?",
      [ids[1]],
    );
    assert.equal(await count("SELECT COUNT(*) n FROM job_workers WHERE id = 'vanished'"), 0);
    const daemon = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'finder' }));
    const queued = await waitFor(async () => ((j) => (j.status === 'done' ? j : undefined))(await getJob(pool, ids[0]!)), { message: 'queued orphan done' });
    const running = await waitFor(async () => ((j) => (j.status === 'done' ? j : undefined))(await getJob(pool, ids[1]!)), { message: 'running orphan done' });
    assert.equal(queued.attempts, 1, 'a queued orphan returns unchanged');
    assert.equal(running.attempts, 2, 'a running orphan counts as a failed attempt');
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
  });
});
