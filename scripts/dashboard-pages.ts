/**
 * What the dashboard's scale test and the bench's `dashboard` scenario share: seeding
 * finished rows fast with MariaDB's sequence engine, and the server time of each page
 * (its `Server-Timing: app;dur=…`, the median of a few loads after a warm-up).
 */
import type mysql from 'mysql2/promise';

/** The pages measured: every page kind, with filters that hit each list path. */
export function dashboardPages(jobId: number): string[] {
  return [
    '/',
    '/api/overview',
    '/api/version',
    '/jobs',
    '/jobs?status=done',
    '/jobs?queue=q1&status=failed',
    '/jobs?queue=q1',
    '/jobs?status=pending',
    '/jobs?q=needle',
    `/jobs/${jobId}`,
    `/jobs/${jobId}/tree`,
    '/schedules',
    '/workers',
  ];
}

/**
 * Finished rows with ids after the current ones, up to `total` finished in all: 90 %
 * done, 7 % failed, 3 % cancelled, over 3 queues, finished one second apart going back
 * from now (so the last hour always holds the same 3,600). MariaDB only (seq_1_to_N).
 */
export async function seedFinished(pool: mysql.Pool, total: number, batch = 250_000): Promise<void> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('done', 'failed', 'cancelled')");
  for (let have = Number(rows[0]?.n ?? 0); have < total; ) {
    const n = Math.min(batch, total - have);
    await pool.query(
      `INSERT INTO jobs (queue, type, payload, status, attempts, run_at, created_at, started_at, finished_at, cancelled_at, result, error)
       SELECT CONCAT('q', 1 + seq % 3), 'sleep', JSON_OBJECT('ms', 1, 'n', seq + ?),
              ELT(1 + seq % 100 DIV 90 + (seq % 100 >= 97), 'done', 'failed', 'cancelled'), 1,
              NOW(3) - INTERVAL (seq + ?) SECOND, NOW(3) - INTERVAL (seq + ?) SECOND, NOW(3) - INTERVAL (seq + ?) SECOND,
              NOW(3) - INTERVAL (seq + ?) SECOND, IF(seq % 100 >= 97, NOW(3) - INTERVAL (seq + ?) SECOND, NULL),
              IF(seq % 100 < 90, JSON_OBJECT('ok', TRUE), NULL), IF(seq % 100 >= 90, 'boom', NULL)
       FROM seq_1_to_${n}`,
      [have, have, have, have, have, have],
    );
    have += n;
  }
}

/** Median server time (ms) of `path` over `runs` loads, after one warm-up load. */
export async function pageServerTime(base: string, path: string, runs = 9, pick: 'median' | 'min' = 'median'): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const res = await fetch(base + path);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
    const m = /app;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
    if (!m) throw new Error(`${path}: no Server-Timing`);
    if (i > 0) times.push(Number(m[1]));
  }
  times.sort((a, b) => a - b);
  // The fastest load is the page's own cost: a busy machine only ever adds to it.
  return pick === 'min' ? times[0]! : times[Math.floor(times.length / 2)]!;
}
