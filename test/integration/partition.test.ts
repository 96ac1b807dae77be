import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { spawnDaemon, testEnv, waitForWorker, type DaemonProcess } from '../helpers/daemon.js';
import { type FreshDatabase, freshDatabase, queriesOn, waitFor } from '../helpers/database.js';
import { createEffectsTable, insertJobs } from '../helpers/factory.js';
import { PartitionProxy } from '../helpers/proxy.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let proxy: PartitionProxy;
const replicas: DaemonProcess[] = [];

const { rows } = queriesOn(() => pool);

describe('a replica cut off from the database (a TCP proxy drops its connections)', () => {
  before(async () => {
    fresh = await freshDatabase('partition');
    pool = fresh.pool;
    const db = new URL(fresh.url);
    proxy = await PartitionProxy.start({ host: db.hostname, port: Number(db.port || 3306) });
  });
  after(async () => {
    for (const r of replicas) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    await proxy?.close();
    await fresh?.drop();
  });

  it('stops starting jobs once it may have been declared dead; the others take its jobs; no job runs on both at once', async () => {
    const settings = { SLUICE_CONCURRENCY: '4', SLUICE_PREFETCH: '20', EFFECTS_URL: fresh.url };
    replicas.push(spawnDaemon(testEnv(fresh.url, { ...settings, SLUICE_WORKER_ID: 'b' })));
    await waitForWorker(pool, 'b');
    await createEffectsTable(pool);
    // 'a' reaches the database through the proxy; its handlers record effects directly.
    replicas.push(spawnDaemon(testEnv(proxy.url(fresh.url), { ...settings, SLUICE_WORKER_ID: 'a' })));
    await waitForWorker(pool, 'a');

    const total = 48;
    const ids = await insertJobs(pool, Array.from({ length: total }, () => ({ type: 'span', payload: { ms: 1500 }, maxAttempts: 10 })));
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE worker = 'a' AND status IN ('queued', 'running')")).length >= 8, {
      message: "'a' holds running and queued jobs",
    });

    const heldQueued = (await rows("SELECT id FROM jobs WHERE worker = 'a' AND status = 'queued'")).map((r) => Number(r.id));
    assert.ok(heldQueued.length > 0, "'a' holds claimed jobs it has not started");
    proxy.cut();
    const cutAt = String((await rows('SELECT NOW(3) AS t'))[0]?.t);
    // The leader ('b') declares 'a' dead after SLUICE_DEAD_AFTER_MS (2 s in tests) and hands its jobs on.
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE worker = 'a' AND status IN ('queued', 'running')")).length === 0, {
      timeoutMs: 15_000,
      message: "'a''s jobs rescued",
    });
    // Heal while 'b' runs a job 'a' had claimed: 'a' must not run it too once it is back.
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE id IN (?) AND worker = 'b' AND status = 'running'", [heldQueued])).length > 0, {
      timeoutMs: 30_000,
      message: "'b' runs one of the jobs 'a' held",
    });
    const healAt = String((await rows('SELECT NOW(3) AS t'))[0]?.t);
    proxy.heal();
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE status = 'done'")).length === total, {
      timeoutMs: 60_000,
      message: 'every job done',
    }).catch(async (err: Error) => {
      const left = await rows("SELECT id, status, worker, attempts, run_at, error FROM jobs WHERE status <> 'done'");
      throw new Error(`${err.message}; not done: ${JSON.stringify(left)}\n${replicas[1]!.output().slice(-3000)}`);
    });

    // 'a' goes stale 0.8 s after its last heartbeat (DEAD_AFTER − HEARTBEAT) and must start
    // nothing after that; 1.5 s leaves room for a late timer on a busy machine.
    const lateStarts = await rows(
      "SELECT job_id, at FROM effects WHERE worker = 'a' AND what = 'start' AND at > ? + INTERVAL 1500000 MICROSECOND AND at < ?",
      [cutAt, healAt],
    );
    assert.deepEqual(lateStarts, [], `'a' started jobs while cut off, after it may have been declared dead (cut at ${cutAt})`);

    // Never at once: for each job, the runs' [start, done] intervals do not overlap.
    const spans = await rows(
      `SELECT s.job_id, s.worker, s.attempt, s.at AS started, MIN(d.at) AS ended
       FROM effects s LEFT JOIN effects d ON d.job_id = s.job_id AND d.worker = s.worker AND d.attempt = s.attempt AND d.what IN ('done', 'aborted') AND d.seq > s.seq
       WHERE s.what = 'start' AND s.job_id IN (?) GROUP BY s.seq ORDER BY s.job_id, s.at`,
      [ids],
    );
    const byJob = new Map<number, mysql.RowDataPacket[]>();
    for (const s of spans) byJob.set(Number(s.job_id), [...(byJob.get(Number(s.job_id)) ?? []), s]);
    for (const [id, runs] of byJob) {
      for (let i = 1; i < runs.length; i++) {
        const prev = runs[i - 1]!;
        // Across workers, a run must have ended (done, or aborted) before the next began.
        if (prev.worker !== runs[i]!.worker) {
          assert.ok(
            prev.ended !== null && prev.ended <= runs[i]!.started,
            `job ${id} ran on ${prev.worker} and ${runs[i]!.worker} at once (cut ${cutAt}, healed ${healAt}): ${JSON.stringify(runs)}\n${replicas[1]!.output().slice(-3000)}`,
          );
        }
      }
    }
    const done = (await rows("SELECT COUNT(DISTINCT job_id) n FROM effects WHERE what = 'done'"))[0]?.n;
    assert.equal(Number(done), total, 'no job lost');
  });
});
