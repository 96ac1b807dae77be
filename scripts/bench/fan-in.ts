/** The fan-in scenario: one parent waiting for BENCH_FANIN_N children, against plain jobs. */
import type mysql from 'mysql2/promise';
import { CONCURRENCY, DB, FANIN_N, POLL_MS } from './config.js';
import { statements } from './counters.js';
import { insertNoops, q, resetDatabase } from './db.js';
import { round, until, type Result } from './harness.js';
import { startReplicas, stopReplicas } from './replicas.js';

/**
 * Fan-in: one parent, BENCH_FANIN_N children (10,000), 3 replicas. First the same number
 * of plain jobs (the baseline for statements per job), then the workflow as a user writes
 * it in SQL: the parent inserted `waiting`, the children inserted with its id, then the
 * seal. Reports statements per child against per plain job, the time from the seal and
 * from the last child's end to the parent's start, and whether the counters are exact.
 */
export async function fanIn(): Promise<Result> {
  const n = FANIN_N;
  await resetDatabase();
  const extra = { SLUICE_CONCURRENCY: CONCURRENCY, SLUICE_RATE: '1000000', SLUICE_POLL_MS: POLL_MS };
  const daemons = await startReplicas(3, extra);
  const done = async (where: string): Promise<number> => Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done' AND ${where}`))[0]?.n);

  const plainBefore = await statements();
  await insertNoops(n);
  await until(async () => (await done('parent_id IS NULL')) >= n, 600_000, 250);
  const plainStatements = (await statements()) - plainBefore;

  const before = await statements();
  const parent = (await q<mysql.ResultSetHeader>(`INSERT INTO ${DB}.jobs (type, payload, status) VALUES ('sleep', '{"ms":0}', 'waiting')`)).insertId;
  for (let i = 0; i < n; i += 5000) {
    const rows = Array.from({ length: Math.min(5000, n - i) }, () => ['sleep', '{"ms":0}', parent]);
    await q(`INSERT INTO ${DB}.jobs (type, payload, parent_id) VALUES ?`, [rows]);
  }
  const [{ sealed_at }] = (await q('SELECT NOW(3) AS sealed_at')) as unknown as [{ sealed_at: string }];
  await q(`UPDATE ${DB}.jobs SET deps_total = ? WHERE id = ?`, [n, parent]);
  await until(async () => (await done(`id = ${Number(parent)}`)) === 1, 600_000, 100);
  const childStatements = (await statements()) - before;
  const peak = await stopReplicas(daemons);

  const [p] = (await q(
    `SELECT deps_done, deps_failed, attempts, TIMESTAMPDIFF(MICROSECOND, ?, started_at) / 1000 AS seal_ms,
            TIMESTAMPDIFF(MICROSECOND, (SELECT MAX(finished_at) FROM ${DB}.jobs WHERE parent_id = ?), started_at) / 1000 AS last_child_ms
     FROM ${DB}.jobs WHERE id = ?`,
    [sealed_at, parent, parent],
  )) as unknown as [{ deps_done: number; deps_failed: number; attempts: number; seal_ms: number; last_child_ms: number }];
  const [c] = (await q(`SELECT COUNT(*) AS n, SUM(status = 'done') AS done, SUM(counted_as = 'done') AS counted FROM ${DB}.jobs WHERE parent_id = ?`, [
    parent,
  ])) as unknown as [{ n: number; done: number; counted: number }];
  const perPlain = plainStatements / n;
  // The parent's own run is one job among the children's: its statements are counted in.
  const perChild = childStatements / n;
  return {
    scenario: 'fan-in',
    replicas: 3,
    n,
    jobs_per_s: null,
    statements_per_job: round(perChild, 4),
    idle_statements_per_s: null,
    p50_pickup_ms: null,
    p99_pickup_ms: null,
    peak_rss_mb: peak,
    statements_per_plain_job: round(perPlain, 4),
    statements_per_child_over_plain: round(perChild - perPlain, 4),
    seal_to_parent_start_ms: Math.round(Number(p.seal_ms)),
    last_child_to_parent_start_ms: Math.round(Number(p.last_child_ms)),
    counters_exact: Number(p.deps_done) === n && Number(p.deps_failed) === 0 && Number(c.done) === n && Number(c.counted) === n,
    parent_attempts: Number(p.attempts),
    concurrency: Number(CONCURRENCY),
    poll_ms: Number(POLL_MS),
  };
}
