// Claims held open (SLUICE_CLAIM_HOLD_MS, #17): quick plain jobs written once, pending →
// done; and what a crash under a held claim leaves (real child processes, kill -9).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { StateWriter } from '../../src/consumers/state-writer.js';
import { createLogger } from '../../src/observability/logger.js';
import { closeFixtures, spawnDaemon, startDaemon, statementCount, testEnv, waitForWorker } from '../helpers/daemon.js';
import type { Daemon } from '../../src/daemon.js';
import { freshDatabase, queriesOn, waitFor, type FreshDatabase } from '../helpers/database.js';
import { insertJobs, jobsByStatus } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;
const { rows, count } = queriesOn(() => pool);

const quick = (n: number, type = 'sleep', payload: unknown = { ms: 0 }) => Array.from({ length: n }, () => ({ type, payload }));

/** A lease row's ids (parsed by mysql2, or text where the server reports JSON as text). */
const idsOf = (r: mysql.RowDataPacket): number[] => (Array.isArray(r.ids) ? r.ids : JSON.parse(String(r.ids))) as number[];

/** Waits until `n` jobs are done (and none failed). */
async function allDone(n: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await jobsByStatus(pool)).done === n, { timeoutMs, message: `${n} jobs done: ${JSON.stringify(await jobsByStatus(pool))}` });
}

/**
 * An in-process daemon on an emptied jobs table that has run 20 quick jobs: it knows runs
 * are quick, so its next claims of 200 or more may be held.
 */
async function warmDaemon(extra: Record<string, string>): Promise<Daemon> {
  await pool.query('DELETE FROM jobs');
  const daemon = await startDaemon(testEnv(db.url, { SLUICE_RATE: '100000', ...extra }));
  try {
    await insertJobs(pool, quick(20));
    await allDone(20);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return daemon;
}

describe('claims held open while quick jobs run', () => {
  before(async () => {
    db = await freshDatabase('held');
    pool = db.pool;
    const migrator = new Database({ url: db.url, connectionLimit: 1 });
    await migrate(migrator);
    await migrator.end();
  });
  after(async () => {
    await closeFixtures();
    await db?.drop();
  });

  it('writes each quick plain job once, pending → done, with everything the two writes would have said', async () => {
    // As many slots as prefetch: the room frees whole, so every claim takes 250 and may be held.
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'holder', SLUICE_CONCURRENCY: '250', SLUICE_PREFETCH: '250' });
    try {
      const claimedBefore = await statementCount(daemon, 'jobsMarkQueued');
      // warmDaemon's claim of 20 went the usual way (held claims take at least 200).
      await insertJobs(pool, quick(1000));
      await allDone(1020);
      const held = await statementCount(daemon, 'jobsFinishHeld');
      assert.ok(held > 0, 'claims were held');
      assert.ok((await statementCount(daemon, 'leaseWrite')) > 0);
      assert.ok((await statementCount(daemon, 'jobsMarkQueued')) - claimedBefore < (await statementCount(daemon, 'leaseWrite')), 'most claims wrote no row');
      const bad = await rows(
        `SELECT id, worker, attempts, queued_at, started_at, finished_at FROM jobs
         WHERE NOT (status = 'done' AND worker = 'holder' AND attempts = 1 AND error IS NULL AND result IS NOT NULL AND spare_bytes IS NULL
                    AND queued_at <= started_at AND started_at <= finished_at AND created_at <= queued_at)`,
      );
      assert.deepEqual(bad, [], 'every row as the usual path leaves it');
      await waitFor(async () => (await count('SELECT COUNT(*) AS n FROM job_leases')) === 0, { message: 'every lease deleted' });
    } finally {
      await daemon.stop();
    }
  });

  it('a held close writes each row its own result and start', async () => {
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'holder-results', SLUICE_CONCURRENCY: '250', SLUICE_PREFETCH: '250' });
    try {
      const held = await statementCount(daemon, 'jobsFinishHeld');
      // Three different results within each claim; the ids ascend, the runs end out of order.
      const ids = await insertJobs(pool, Array.from({ length: 750 }, (_, i) => ({ type: 'sleep', payload: { ms: (i * 7) % 3 } })));
      await allDone(770);
      assert.ok((await statementCount(daemon, 'jobsFinishHeld')) > held, 'claims were held');
      const got = await rows('SELECT id, result, payload, started_at, finished_at FROM jobs WHERE id IN (?) ORDER BY id', [ids]);
      const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
      const wrong = got.filter((r) => JSON.stringify(json(r.result)) !== JSON.stringify({ slept: (json(r.payload) as { ms: number }).ms }));
      assert.deepEqual(wrong.map((r) => r.id), [], 'every row holds its own job\'s result');
      assert.equal(new Set(got.map((r) => String(r.started_at))).size > 1, true, 'starts are the runs\' own, not one per claim');
      assert.deepEqual(got.filter((r) => !(r.started_at <= r.finished_at)).map((r) => r.id), []);
    } finally {
      await daemon.stop();
    }
  });

  it('a held close carries at most CLOSE_RESULT_CHARS of results; the other runs end the usual way', async () => {
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'holder-big', SLUICE_CONCURRENCY: '250', SLUICE_PREFETCH: '250' });
    try {
      const [held, usual] = [await statementCount(daemon, 'jobsFinishHeld'), await statementCount(daemon, 'jobsFinish')];
      // 250 results of 20,000 characters: 5 MB, about five closes' worth.
      const ids = await insertJobs(pool, Array.from({ length: 250 }, () => ({ type: 'huge', payload: { bytes: 20_000 } })));
      await allDone(270);
      assert.ok((await statementCount(daemon, 'jobsFinishHeld')) > held, 'the close wrote some');
      assert.ok((await statementCount(daemon, 'jobsFinish')) > usual, 'the rest went the usual way');
      const bad = await rows("SELECT id FROM jobs WHERE id IN (?) AND NOT (status = 'done' AND attempts = 1 AND CHAR_LENGTH(result) = 20002)", [ids]);
      assert.deepEqual(bad, [], 'every job done once, its whole result kept');
    } finally {
      await daemon.stop();
    }
  });

  it('a job that fails under a held claim is written running, then failed the usual way', async () => {
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'holder-2', SLUICE_CONCURRENCY: '100' });
    try {
      // A claim of 250 (held claims take at least 200), one of them refused.
      const ids = await insertJobs(pool, [...quick(249), { type: 'refuse', payload: {} }]);
      const bad = ids.at(-1);
      const job = await waitFor(async () => (await rows("SELECT status, attempts, error, spare_bytes FROM jobs WHERE id = ? AND status = 'failed'", [bad]))[0], {
        message: 'the refused job failed',
      });
      assert.equal(Number(job.attempts), 1);
      assert.match(String(job.error), /refused: nothing to retry/);
      assert.equal(job.spare_bytes, null, 'a final row keeps no spare bytes');
      assert.ok((await statementCount(daemon, 'jobsMarkRunningHeld')) > 0, 'its claim was held and wrote it running');
    } finally {
      await daemon.stop();
    }
  });

  it('a cancel UPDATE of a held row waits for the close, then applies to the row as written', async () => {
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'holder-3', SLUICE_CONCURRENCY: '300' });
    try {
      // Quick so far, so the claim of these 300 is held; each runs 150 ms.
      await insertJobs(pool, quick(300, 'sleep', { ms: 150 }));
      const lease = await waitFor(async () => (await rows("SELECT ids FROM job_leases WHERE worker = 'holder-3'"))[0], {
        intervalMs: 5,
        message: 'a held claim',
      });
      const id = idsOf(lease).at(-1)!;
      const [before] = await rows('SELECT status, worker FROM jobs WHERE id = ?', [id]);
      assert.deepEqual({ ...before }, { status: 'pending', worker: null }, 'a held row reads pending with no worker');
      const conn = await pool.getConnection();
      try {
        await conn.query('SET SESSION innodb_lock_wait_timeout = 5');
        await conn.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?', [id]);
        const [[after]] = (await conn.query('SELECT status, worker FROM jobs WHERE id = ?', [id])) as unknown as [[{ status: string; worker: string | null }]];
        assert.notEqual(after.status, 'pending', 'the UPDATE waited for the close');
        assert.equal(after.worker, 'holder-3');
      } finally {
        conn.release();
      }
      const job = await waitFor(async () => (await rows("SELECT status, error FROM jobs WHERE id = ? AND status IN ('done', 'cancelled')", [id]))[0], {
        message: 'the job ended',
      });
      if (job.status === 'cancelled') assert.match(String(job.error), /cancel/);
      await waitFor(async () => (await count("SELECT COUNT(*) AS n FROM jobs WHERE status NOT IN ('done', 'cancelled')")) === 0, { message: 'every job ended' });
    } finally {
      await daemon.stop();
    }
  });

  it('a close whose connection dies falls back: rows written as claimed, outcomes the usual way, each job once', async () => {
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'holder-4', SLUICE_CONCURRENCY: '300', SLUICE_CLAIM_HOLD_MS: '1000' });
    try {
      // Quick so far, so the claim of these 300 is held; each runs 450 ms, time enough to
      // kill the claim's connection while it is open.
      await insertJobs(pool, quick(300, 'sleep', { ms: 450 }));
      await waitFor(async () => (await count("SELECT COUNT(*) AS n FROM job_leases WHERE worker = 'holder-4'")) > 0, { intervalMs: 5, message: 'a held claim' });
      // The claim's transaction: the only one left open between statements in this database
      // while its jobs run (an autocommit statement running meanwhile is not idle).
      const trx = await rows(
        `SELECT t.trx_mysql_thread_id AS thread FROM information_schema.INNODB_TRX t
         JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = DATABASE() AND p.COMMAND = 'Sleep'`,
      );
      assert.equal(trx.length, 1, 'one open transaction: the held claim');
      await pool.query('KILL CONNECTION ?', [Number(trx[0]!.thread)]);
      // The rows rolled back to pending while their jobs ran; the lease kept every claim off them.
      await allDone(320);
      assert.ok((await statementCount(daemon, 'jobsClaimHeldFallbackCommit')) > 0, 'the close fell back');
      const bad = await rows("SELECT id, worker, attempts FROM jobs WHERE NOT (worker = 'holder-4' AND attempts = 1 AND error IS NULL)");
      assert.deepEqual(bad, [], 'each job ran once, by its claimer, its attempt counted once');
      await waitFor(async () => (await count('SELECT COUNT(*) AS n FROM job_leases')) === 0, { message: 'the lease deleted' });
    } finally {
      await daemon.stop();
    }
  });

  it('SLUICE_CLAIM_HOLD_MS=0 never holds a claim', async () => {
    const daemon = await warmDaemon({ SLUICE_WORKER_ID: 'no-holder', SLUICE_CLAIM_HOLD_MS: '0' });
    try {
      await insertJobs(pool, quick(200));
      await allDone(220);
      assert.equal(await statementCount(daemon, 'leaseWrite'), 0);
      assert.equal(await statementCount(daemon, 'jobsFinishHeld'), 0);
      assert.equal(await count('SELECT COUNT(*) AS n FROM jobs WHERE spare_bytes IS NOT NULL'), 0, 'the usual path gives the spare bytes up too');
    } finally {
      await daemon.stop();
    }
  });

  it('a lease its replica may have left behind is swept soon; young leases and other replicas\' stay', async () => {
    const database = new Database({ url: db.url, connectionLimit: 2 });
    const writer = new StateWriter({ db: database, worker: 'sweeper', logger: createLogger('error'), leaseSweepMs: 50 });
    try {
      await pool.query(
        `INSERT INTO job_leases (worker, batch, ids, created_at) VALUES
           ('sweeper', 1, '[1]', NOW(3) - INTERVAL 10 SECOND), ('sweeper', 2, '[2]', NOW(3)), ('other', 3, '[3]', NOW(3) - INTERVAL 10 SECOND)`,
      );
      writer.leaseLeftBehind();
      await waitFor(async () => (await count("SELECT COUNT(*) AS n FROM job_leases WHERE worker = 'sweeper' AND batch = 1")) === 0, {
        message: 'the old lease swept',
      });
      const left = await rows('SELECT worker, batch FROM job_leases ORDER BY batch');
      assert.deepEqual(left.map((r) => `${r.worker}/${r.batch}`), ['sweeper/2', 'other/3']);
    } finally {
      writer.close();
      await database.end();
      await pool.query('DELETE FROM job_leases');
    }
  });

  it('a crash under a held claim: another replica runs its jobs once the leader resolves the lease, each attempt counted once', async () => {
    await pool.query('DELETE FROM jobs');
    const total = 3000;
    // Runs of ~20 ms, claims of 200 for 200 slots: most claims are held, most of the time one is.
    await insertJobs(pool, quick(total, 'sleep', { ms: 20 }));
    let leased: number[] = [];
    for (let life = 1; leased.length === 0; life++) {
      assert.ok(life <= 5, 'a held claim was open when the replica was killed');
      const doomed = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'doomed', SLUICE_CONCURRENCY: '200', SLUICE_PREFETCH: '200', SLUICE_RATE: '100000' }));
      try {
        await waitFor(async () => (await count("SELECT COUNT(*) AS n FROM job_leases WHERE worker = 'doomed'")) > 0, {
          timeoutMs: 20_000,
          message: `a held claim: ${doomed.output()}`,
        });
      } finally {
        doomed.proc.kill('SIGKILL');
        await doomed.exited;
      }
      // What is still leased was held at the kill: those rows rolled back to pending.
      for (const r of await rows("SELECT ids FROM job_leases WHERE worker = 'doomed'")) leased.push(...idsOf(r));
      leased = [...new Set(leased)];
    }
    const atKill = await rows('SELECT status, worker FROM jobs WHERE id IN (?)', [leased]);
    assert.ok(atKill.every((r) => r.status === 'pending' && r.worker === null), `leased rows read pending with no worker: ${JSON.stringify(atKill)}`);

    const heir = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'heir', SLUICE_CONCURRENCY: '20' }));
    try {
      await waitForWorker(pool, 'heir');
      await allDone(total, 60_000);
      assert.equal(await count('SELECT COUNT(*) AS n FROM job_leases'), 0, 'the lease was resolved and deleted');
      const leasedRows = await rows('SELECT id, worker, attempts FROM jobs WHERE id IN (?)', [leased]);
      for (const r of leasedRows) {
        assert.equal(r.worker, 'heir', `job ${r.id} finished by the heir`);
        assert.equal(Number(r.attempts), 1, `job ${r.id}: its run was recorded before its handler, once`);
      }
      assert.deepEqual(await rows("SELECT id FROM jobs WHERE status <> 'done'"), []);
    } finally {
      heir.proc.kill('SIGTERM');
      await heir.exited;
    }
  });

  it('a job that kills its process under a held claim uses up its attempts instead of looping', async () => {
    await pool.query('DELETE FROM jobs');
    await pool.query('DELETE FROM job_workers');
    const env = testEnv(db.url, { SLUICE_WORKER_ID: 'taster', SLUICE_DEAD_AFTER_MS: '60000', SLUICE_CONCURRENCY: '100', SLUICE_RATE: '100000' });
    // Life 1 learns that runs are quick, then takes the poison job under a held claim and dies.
    const first = spawnDaemon(env);
    let poison: number | undefined;
    try {
      await waitForWorker(pool, 'taster');
      await insertJobs(pool, quick(20));
      await allDone(20);
      // One claim of 200 (held claims take at least 200), the poison job last.
      poison = (await insertJobs(pool, [...quick(199), { type: 'crash', payload: {}, maxAttempts: 2 }])).at(-1);
      assert.equal(await first.exited, 3, first.output().slice(-500));
    } finally {
      first.proc.kill('SIGKILL'); // a no-op once it died of the job
    }
    const lease = await rows("SELECT ids FROM job_leases WHERE worker = 'taster'");
    assert.ok(poison !== undefined && lease.flatMap(idsOf).includes(poison), 'it died under a held claim, its lease left behind');
    assert.equal((await rows('SELECT attempts FROM jobs WHERE id = ?', [poison]))[0]?.attempts, 0, 'the rolled-back claim counted nothing');
    // Life 2 resolves its own lease, records the start first and dies (attempt 1); life 3 dies on attempt 2.
    for (let life = 2; life <= 3; life++) {
      const daemon = spawnDaemon(env);
      assert.equal(await daemon.exited, 3, `life ${life} died of the job: ${daemon.output().slice(-500)}`);
    }
    assert.equal(await count('SELECT COUNT(*) AS n FROM job_leases'), 0);
    const survivor = spawnDaemon(env);
    try {
      const job = await waitFor(async () => (await rows("SELECT status, attempts FROM jobs WHERE id = ? AND status = 'failed'", [poison]))[0], {
        message: 'the poison job ends failed',
      });
      assert.equal(Number(job.attempts), 2);
    } finally {
      survivor.proc.kill('SIGTERM');
      await survivor.exited;
    }
  });
});
