/** The dashboard scenario: each page's server time as finished history grows. */
import mysql from 'mysql2/promise';
import { dashboardPages, pageServerTime, seedFinished } from '../dashboard-pages.js';
import { DASHBOARD_PORT, DASHBOARD_ROWS, DB } from './config.js';
import { daemonUrl, q, resetDatabase } from './db.js';
import { until, type Result } from './harness.js';
import { startReplica, stopReplicas } from './replicas.js';

/**
 * Dashboard: one replica serving the dashboard; finished rows seeded (MariaDB sequence
 * engine) up to each of BENCH_DASHBOARD_ROWS in turn, then each page's server time
 * (Server-Timing, median of 5 after a warm-up). A page that is O(history) shows it here.
 */
export async function dashboard(): Promise<Result> {
  await resetDatabase();
  const daemon = startReplica('bench-1', { SLUICE_DASHBOARD_PORT: String(DASHBOARD_PORT), SLUICE_POLL_MS: '1000' });
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.job_workers`).catch(() => [{ n: 0 }]))[0]?.n) === 1, 60_000);
  const pool = mysql.createPool({ uri: daemonUrl, connectionLimit: 2, dateStrings: true, charset: 'utf8mb4_unicode_ci' });
  const base = `http://127.0.0.1:${DASHBOARD_PORT}`;
  const [p] = await pool.query<mysql.ResultSetHeader>("INSERT INTO jobs (queue, type, status) VALUES ('q1', 'merge', 'waiting')");
  await pool.query("INSERT INTO jobs (queue, type, status, finished_at, parent_id) SELECT 'q1', 'sleep', 'done', NOW(3), ? FROM seq_1_to_200", [p.insertId]);
  const pages: Record<string, Record<string, number>> = {};
  const seedSeconds: Record<string, number> = {};
  try {
    for (const rows of DASHBOARD_ROWS) {
      const started = Date.now();
      await seedFinished(pool, rows);
      seedSeconds[rows] = Math.round((Date.now() - started) / 1000);
      // Two snapshot ticks (5 s apart at a 1 s poll) so the counts are current.
      await new Promise((r) => setTimeout(r, 11_000));
      for (const path of dashboardPages(p.insertId)) (pages[path] ??= {})[rows] = await pageServerTime(base, path);
    }
  } finally {
    await pool.end();
  }
  const peak = await stopReplicas([daemon]);
  return { scenario: 'dashboard', replicas: 1, n: 0, jobs_per_s: null, statements_per_job: null, idle_statements_per_s: null, p50_pickup_ms: null, p99_pickup_ms: null, peak_rss_mb: peak, server_ms_by_page_and_rows: pages, seed_seconds: seedSeconds };
}
