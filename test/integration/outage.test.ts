import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { freePort, LocalMysqlServer } from '../../scripts/local-mysql/server.js';
import { spawnDaemon, testEnv, type DaemonProcess } from '../helpers/daemon.js';
import { freshDatabase, POOL_OPTIONS, waitFor, type FreshDatabase } from '../helpers/database.js';
import { createEffectsTable, insertJobs } from '../helpers/factory.js';

async function readyz(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
  } catch {
    return 0;
  }
}

describe('database outage (a private mariadbd, stopped and started by the test)', () => {
  let server: LocalMysqlServer;
  let daemon: DaemonProcess;
  let port: number;
  // The handlers record their effects on the shared server, which stays up: the test asks
  // whether sluice loses or doubles jobs, not whether a handler's own write to a dying
  // server lands (a write committed just before the kill loses its answer, and the
  // handler, seeing an error, is retried: at least once, by design).
  let effects: FreshDatabase;

  before(async () => {
    server = await LocalMysqlServer.start({ database: 'outage' });
    port = await freePort();
    effects = await freshDatabase('outage_effects');
    await createEffectsTable(effects.pool);
  });
  after(async () => {
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    await server?.destroy();
    await effects?.drop();
  });

  it('keeps running, turns not-ready, backs off, and resumes when the server is back: nothing lost or doubled', async () => {
    daemon = spawnDaemon(
      testEnv(server.url, { SLUICE_HTTP_PORT: String(port), SLUICE_WORKER_ID: 'survivor', SLUICE_CONCURRENCY: '4', EFFECTS_URL: effects.url, LOG_LEVEL: 'info' }),
    );
    await waitFor(async () => (await readyz(port)) === 200, { timeoutMs: 20_000, message: `/readyz never 200: ${daemon.output()}` });

    const pool = mysql.createPool({ uri: server.url, connectionLimit: 2, ...POOL_OPTIONS });
    const total = 200;
    await insertJobs(pool, Array.from({ length: total }, () => ({ type: 'record', payload: { ms: 20 }, maxAttempts: 10 })));
    await waitFor(async () => {
      const [r] = await pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM jobs WHERE status = 'done'");
      return Number(r[0]?.n) >= 20;
    });
    await pool.end();

    await server.kill();
    await waitFor(async () => (await readyz(port)) === 503, { timeoutMs: 15_000, message: '/readyz never turned 503' });
    assert.equal(daemon.proc.exitCode, null, 'the daemon keeps running without its database');

    await server.restart();
    await waitFor(async () => (await readyz(port)) === 200, { timeoutMs: 30_000, message: `/readyz never came back: ${daemon.output().slice(-2000)}` });

    const after = mysql.createPool({ uri: server.url, connectionLimit: 2, ...POOL_OPTIONS });
    try {
      await waitFor(
        async () => {
          const [r] = await after.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM jobs WHERE status = 'done'");
          return Number(r[0]?.n) === total;
        },
        { timeoutMs: 60_000, message: 'every job done after the outage' },
      );
      const [doubled] = await effects.pool.query<mysql.RowDataPacket[]>(
        "SELECT job_id, COUNT(*) n, GROUP_CONCAT(attempt ORDER BY seq) AS attempts FROM effects WHERE what = 'done' GROUP BY job_id HAVING n > 1",
      );
      assert.deepEqual(doubled, [], 'no job completed its effect twice');
      const [[{ n }]] = (await effects.pool.query("SELECT COUNT(DISTINCT job_id) n FROM effects WHERE what = 'done'")) as unknown as [[{ n: number }]];
      assert.equal(Number(n), total, 'no job lost');
      const [[{ left }]] = (await after.query("SELECT COUNT(*) `left` FROM jobs WHERE status IN ('queued','running','pending')")) as unknown as [[{ left: number }]];
      assert.equal(Number(left), 0);
    } finally {
      await after.end();
    }
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0, daemon.output().slice(-2000));
    // The log tells a first connection from a recovery.
    const health = [...daemon.output().matchAll(/"msg":"(database [^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual([...new Set(health)], ['database connected', 'database unreachable; retrying with backoff', 'database answers again']);
  });

  it('three replicas, the database killed for 5 s mid-run: only interrupted runs run again, no finished one', async () => {
    const pool = mysql.createPool({ uri: server.url, connectionLimit: 2, ...POOL_OPTIONS });
    await effects.pool.query('DELETE FROM effects');
    const replicas = ['r1', 'r2', 'r3'].map((id) =>
      spawnDaemon(testEnv(server.url, { SLUICE_WORKER_ID: id, SLUICE_CONCURRENCY: '10', SLUICE_PREFETCH: '40', EFFECTS_URL: effects.url })),
    );
    try {
      const total = 1000;
      await waitFor(async () => {
        const [r] = await pool.query<mysql.RowDataPacket[]>('SELECT COUNT(*) n FROM job_workers');
        return Number(r[0]?.n) === 3;
      }, { timeoutMs: 20_000, message: 'three replicas registered' });
      await pool.query('DELETE FROM jobs');
      await insertJobs(pool, Array.from({ length: total }, () => ({ type: 'span', payload: { ms: 10 }, maxAttempts: 20 })));
      await waitFor(async () => {
        const [r] = await pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM jobs WHERE status = 'done'");
        return Number(r[0]?.n) >= 150;
      }, { timeoutMs: 30_000, message: 'some jobs done before the kill' });
      await pool.end();

      await server.kill();
      await new Promise((r) => setTimeout(r, 5000)); // the outage itself, not an assertion
      await server.restart();

      const after = mysql.createPool({ uri: server.url, connectionLimit: 2, ...POOL_OPTIONS });
      try {
        await waitFor(
          async () => {
            const [r] = await after.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM jobs WHERE status = 'done'");
            return Number(r[0]?.n) === total;
          },
          { timeoutMs: 90_000, message: 'every job done after the outage' },
        );
      } finally {
        await after.end();
      }
      // A run counts as interrupted when it recorded 'aborted'. Every 'done' beyond the
      // first must be explained by an interrupted run of the same job.
      const [rows] = await effects.pool.query<mysql.RowDataPacket[]>(
        `SELECT job_id, SUM(what = 'done') AS done, SUM(what = 'aborted') AS aborted FROM effects GROUP BY job_id`,
      );
      assert.equal(rows.length, total, 'every job ran');
      const unexplained = rows.filter((r) => Number(r.done) < 1 || Number(r.done) - 1 > Number(r.aborted));
      assert.deepEqual(unexplained.slice(0, 5), [], `no finished run ran again (${unexplained.length} did)`);
    } finally {
      for (const r of replicas) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
      await Promise.all(replicas.map((r) => r.exited));
    }
  });
});
