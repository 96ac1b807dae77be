import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { spawnDaemon, spawnReplicas, stopReplicas, testEnv, waitForWorker, type DaemonProcess } from '../helpers/daemon.js';
import { type FreshDatabase, freshDatabase, queriesOn, waitFor } from '../helpers/database.js';
import { createEffectsTable, insertJobs, jobsByStatus } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;

const { rows } = queriesOn(() => pool);

function startReplicas(names: string[], extra: Record<string, string> = {}): Promise<DaemonProcess[]> {
  return spawnReplicas(db.url, pool, names, { SLUICE_CONCURRENCY: '8', ...extra });
}

const stopAll = stopReplicas;

describe('several replicas, one truth (real child processes)', () => {
  before(async () => {
    db = await freshDatabase('replicas');
    pool = db.pool;
    await createEffectsTable(pool);
  });
  after(async () => db?.drop());

  it('three replicas drain 3000 jobs: exactly one effect per job, every replica did work', async () => {
    const replicas = await startReplicas(['r1', 'r2', 'r3'], { SLUICE_RATE: '100000', SLUICE_PREFETCH: '100' });
    try {
      const total = 3000;
      const ids: number[] = [];
      for (let i = 0; i < total; i += 500) ids.push(...(await insertJobs(pool, Array.from({ length: 500 }, () => ({ type: 'record', payload: {} })))));
      await waitFor(async () => (await jobsByStatus(pool)).done === total, { timeoutMs: 90_000, message: 'all jobs done' });
      const perJob = await rows("SELECT job_id, COUNT(*) AS n FROM effects WHERE what = 'done' GROUP BY job_id HAVING n <> 1");
      assert.deepEqual(perJob, [], 'a job recorded its effect more or less than once');
      const [{ n }] = (await rows("SELECT COUNT(DISTINCT job_id) AS n FROM effects WHERE what = 'done'")) as [{ n: number }];
      assert.equal(Number(n), total);
      const byWorker = await rows('SELECT worker, COUNT(*) AS n FROM jobs GROUP BY worker ORDER BY worker');
      assert.deepEqual(byWorker.map((r) => r.worker), ['r1', 'r2', 'r3'], `every replica did work: ${JSON.stringify(byWorker)}`);
      assert.deepEqual(await rows('SELECT id FROM jobs WHERE attempts <> 1'), [], 'no job ran twice');
    } finally {
      await stopAll(replicas);
    }
    assert.deepEqual(await rows('SELECT id FROM job_workers'), [], 'clean exits remove their worker rows');
  });

  it('kill -9 of a replica mid-run: its jobs finish on the others, attempts show the rerun', async () => {
    await pool.query('DELETE FROM jobs');
    await pool.query('DELETE FROM effects');
    const replicas = await startReplicas(['k1', 'k2', 'k3'], { SLUICE_CONCURRENCY: '4', SLUICE_PREFETCH: '8' });
    try {
      const total = 60;
      await insertJobs(pool, Array.from({ length: total }, () => ({ type: 'record', payload: { ms: 400 }, maxAttempts: 3 })));
      await waitFor(async () => (await rows("SELECT id FROM jobs WHERE worker = 'k1' AND status = 'running'")).length > 0, {
        message: 'k1 runs something',
      });
      const victim = replicas[0]!;
      victim.proc.kill('SIGKILL');
      assert.equal(await victim.exited, 'SIGKILL');
      const heldByVictim = await rows("SELECT id, status FROM jobs WHERE worker = 'k1' AND status IN ('queued', 'running')");
      assert.ok(heldByVictim.length > 0, 'the killed replica left jobs behind');
      const wasRunning = heldByVictim.filter((r) => r.status === 'running').map((r) => Number(r.id));

      await waitFor(async () => (await jobsByStatus(pool)).done === total, { timeoutMs: 60_000, message: 'all jobs done after the kill' });
      const leftovers = await rows("SELECT id FROM jobs WHERE status IN ('queued', 'running', 'pending')");
      assert.deepEqual(leftovers, []);
      const rerun = await rows('SELECT id, attempts, worker, error FROM jobs WHERE id IN (?)', [wasRunning]);
      for (const r of rerun) {
        assert.equal(Number(r.attempts), 2, `job ${r.id} was rerun once after its replica died`);
        assert.notEqual(r.worker, 'k1');
        assert.match(String(r.error), /worker died while running it \(worker k1, attempt 1\)/);
      }
      await waitFor(async () => (await rows("SELECT id FROM job_workers WHERE id = 'k1'")).length === 0, { message: 'dead worker row removed' });
    } finally {
      await stopAll(replicas);
    }
  });
  it('a container restarted with the same worker id recovers its previous life at once', async () => {
    await pool.query('DELETE FROM jobs');
    // Dead-after is a minute: only the restart's own recovery can bring these jobs back in time.
    const env = { SLUICE_WORKER_ID: 'phoenix', SLUICE_CONCURRENCY: '2', SLUICE_PREFETCH: '4', SLUICE_DEAD_AFTER_MS: '60000' };
    const first = spawnDaemon(testEnv(db.url, env));
    await waitForWorker(pool, 'phoenix');
    const ids = await insertJobs(pool, Array.from({ length: 4 }, () => ({ type: 'record', payload: { ms: 1500 } })));
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE worker = 'phoenix' AND status = 'running'")).length === 2);
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE worker = 'phoenix' AND status = 'queued'")).length === 2);
    const running = (await rows("SELECT id FROM jobs WHERE status = 'running'")).map((r) => Number(r.id));
    first.proc.kill('SIGKILL');
    await first.exited;

    const second = spawnDaemon(testEnv(db.url, env));
    try {
      await waitFor(async () => (await rows("SELECT id FROM jobs WHERE status = 'done' AND id IN (?)", [ids])).length === 4, {
        timeoutMs: 20_000,
        message: 'the restarted worker finished its previous life’s jobs',
      });
      for (const r of await rows('SELECT id, attempts, error FROM jobs WHERE id IN (?)', [running])) {
        assert.equal(Number(r.attempts), 2, `job ${r.id}: the interrupted run counts as an attempt`);
        assert.match(String(r.error), /worker restarted while running it \(worker phoenix, attempt 1\)/);
      }
      const others = ids.filter((id) => !running.includes(id));
      for (const r of await rows('SELECT attempts FROM jobs WHERE id IN (?)', [others])) assert.equal(Number(r.attempts), 1, 'queued ones came back unchanged');
    } finally {
      second.proc.kill('SIGTERM');
      await second.exited;
    }
  });
  it('a job that kills its process at once uses up its attempts instead of looping', async () => {
    await pool.query('DELETE FROM jobs');
    const env = { SLUICE_WORKER_ID: 'taster', SLUICE_DEAD_AFTER_MS: '60000' };
    const [id] = await insertJobs(pool, [{ type: 'crash', payload: {}, maxAttempts: 2 }]);
    // Life 1 dies before its start is written; life 2 recovers it unchanged, records the
    // start first and dies (attempt 1); life 3 dies on attempt 2.
    for (let life = 1; life <= 3; life++) {
      const daemon = spawnDaemon(testEnv(db.url, env));
      assert.equal(await daemon.exited, 3, `life ${life} died of the job: ${daemon.output().slice(-500)}`);
    }
    // Life 4 finds no attempt left: it fails the job at start-up and lives on.
    const survivor = spawnDaemon(testEnv(db.url, env));
    try {
      const job = await waitFor(async () => {
        const r = (await rows('SELECT status, attempts, error FROM jobs WHERE id = ?', [id]))[0];
        return r?.status === 'failed' ? r : undefined;
      }, { message: 'the poison job ends failed' });
      assert.equal(Number(job.attempts), 2);
      assert.match(String(job.error), /worker restarted while running it/);
    } finally {
      survivor.proc.kill('SIGTERM');
      await survivor.exited;
    }
  });

  it('a re-claimed job is recorded running before its handler starts', async () => {
    await pool.query('DELETE FROM jobs');
    const [fresh, handedBack] = await insertJobs(pool, [{ type: 'whoami', payload: {} }, { type: 'whoami', payload: {} }]);
    // As a graceful hand-back leaves it: pending, attempts unchanged, last holder named.
    await pool.query("UPDATE jobs SET worker = 'gone' WHERE id = ?", [handedBack]);
    const daemon = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'careful' }));
    try {
      await waitFor(async () => (await rows("SELECT id FROM jobs WHERE status = 'done' AND id IN (?)", [[fresh, handedBack]])).length === 2);
      const seen = await rows('SELECT id, result FROM jobs WHERE id IN (?) ORDER BY id', [[fresh, handedBack]]);
      const reclaimed = seen.find((r) => Number(r.id) === handedBack)?.result as { status: string; attempts: number };
      assert.deepEqual(reclaimed, { status: 'running', attempts: 1 }, 'its start was written before the handler ran');
    } finally {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
  });
});
