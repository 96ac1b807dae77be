/**
 * The leader's dashboard snapshot (job_counts, job_throughput, job_dashboard_marks;
 * migration 006), run on the daemon's pool. Nothing here counts or sorts finished
 * history: counts are LIMITed ranges of an index, throughput a range of jobs_finished.
 */
import type { Executor } from '../database.js';
import { num, text } from './rows.js';

/**
 * Queues that have rows in `status`, in name order, at most `limit`: a loose scan done by
 * hand, one index dive of jobs_claim per queue found (`GROUP BY queue` reads every entry
 * of the status instead: ~170 ms over 900,000 done rows on MariaDB 10.11). Pages use it
 * too, to list a status across queues.
 * Params per dive: status, after.
 */
export async function jobsQueuesWithStatus(db: Executor, status: string, limit = 1000): Promise<string[]> {
  const out: string[] = [];
  for (let after = ''; out.length < limit; ) {
    const rows = await db.run(
      'jobsNextQueueWithStatus',
      'SELECT queue FROM jobs FORCE INDEX (jobs_claim) WHERE status = ? AND queue > ? ORDER BY queue LIMIT 1',
      [status, after],
    );
    const row = rows[0];
    if (row === undefined) break;
    const next = text(row.queue);
    out.push(next);
    after = next;
  }
  return out;
}

export interface CountCappedParams {
  status: string;
  queue: string;
  /** Most index entries counted. */
  cap: number;
}

/** Rows of (status, queue), counting at most `cap` index entries. Params: status, queue, cap. */
export async function jobsCountCapped(db: Executor, { status, queue, cap }: CountCappedParams): Promise<number> {
  const rows = await db.run(
    'jobsCountCapped',
    'SELECT COUNT(*) AS n FROM (SELECT 1 FROM jobs WHERE status = ? AND queue = ? LIMIT ?) t',
    [status, queue, cap],
  );
  return num(rows[0]?.n ?? 0);
}

export interface CountRow {
  queue: string;
  status: string;
  n: number;
  capped: boolean;
}

/** Replaces the whole snapshot (a few rows) and stamps the 'counts' mark. Inside a transaction. */
export async function countsReplace(tx: Executor, rows: readonly CountRow[], worker: string): Promise<void> {
  await tx.run('countsDelete', 'DELETE FROM job_counts');
  if (rows.length > 0) {
    await tx.run('countsInsert', 'INSERT INTO job_counts (queue, status, n, capped, computed_at) VALUES ?', [
      rows.map((r) => [r.queue, r.status, r.n, r.capped, new Date(0)]),
    ]);
    // One server clock for every row (the client's Date above is only a placeholder).
    await tx.run('countsStamp', 'UPDATE job_counts SET computed_at = NOW(3)');
  }
  await marksTouchCounts(tx, worker);
}

/** Records that the counts were taken now (also when they had not changed). Params: worker. */
export async function marksTouchCounts(db: Executor, worker: string): Promise<void> {
  await db.run(
    'marksUpsertCounts',
    `INSERT INTO job_dashboard_marks (name, at, worker) VALUES ('counts', NOW(3), ?)
     ON DUPLICATE KEY UPDATE at = VALUES(at), worker = VALUES(worker)`,
    [worker],
  );
}

/** Creates the throughput mark `backfillS` back on the first tick; outside the tick's transaction. Params: backfillS. */
export async function marksSeedThroughput(db: Executor, backfillS: number): Promise<void> {
  await db.run('marksSeedThroughput', `INSERT IGNORE INTO job_dashboard_marks (name, at) VALUES ('throughput', NOW(3) - INTERVAL ? SECOND)`, [backfillS]);
}

/**
 * Where throughput counting stands: the mark (NULL before the first tick) and the end of
 * the next window: at most `maxWindowS` past the mark, and `lagS` behind NOW(3), so a
 * row whose transaction commits a little after its finished_at was stamped is not missed.
 * Read FOR UPDATE inside the tick's transaction (after marksSeedThroughput). Params: lagS, maxWindowS.
 */
export async function marksLockThroughput(
  tx: Executor,
  lagS: number,
  maxWindowS: number,
): Promise<{ from: string; to: string } | undefined> {
  const rows = await tx.run(
    'marksLockThroughput',
    `SELECT at AS from_at, LEAST(NOW(3) - INTERVAL ? SECOND, at + INTERVAL ? SECOND) AS to_at
     FROM job_dashboard_marks WHERE name = 'throughput' FOR UPDATE`,
    [lagS, maxWindowS],
  );
  const row = rows[0];
  if (!row) return undefined;
  const window = { from: text(row.from_at), to: text(row.to_at) };
  return window.to <= window.from ? undefined : window;
}

/**
 * Adds the rows that finished in (from, to] to their minutes, and moves the mark to `to`.
 * A range of jobs_finished: O(jobs finished in the window). Params: from, to.
 */
export async function throughputAdd(tx: Executor, from: string, to: string): Promise<number> {
  const rows = await tx.run(
    'jobsThroughputSince',
    `SELECT DATE_FORMAT(finished_at, '%Y-%m-%d %H:%i:00') AS minute, queue, status, COUNT(*) AS n
     FROM jobs WHERE finished_at > ? AND finished_at <= ?
     GROUP BY 1, 2, 3`,
    [from, to],
  );
  const minutes = rows.map((r) => ({ minute: text(r.minute), queue: text(r.queue), status: text(r.status), n: num(r.n) }));
  if (minutes.length > 0) {
    await tx.run(
      'throughputUpsert',
      'INSERT INTO job_throughput (minute, queue, status, n) VALUES ? ON DUPLICATE KEY UPDATE n = n + VALUES(n)',
      [minutes.map((m) => [m.minute, m.queue, m.status, m.n])],
    );
  }
  await tx.run('marksMoveThroughput', "UPDATE job_dashboard_marks SET at = ? WHERE name = 'throughput'", [to]);
  return minutes.reduce((s, m) => s + m.n, 0);
}

/** Deletes throughput minutes older than `days`, a small batch at a time. Params: days, limit. */
export async function throughputPrune(db: Executor, days: number, limit: number): Promise<number> {
  const res = await db.run<{ affectedRows: number }>('throughputPrune', 'DELETE FROM job_throughput WHERE minute < NOW() - INTERVAL ? DAY LIMIT ?', [
    days,
    limit,
  ]);
  return res.affectedRows;
}
