/**
 * The SQL of the dashboard, named table-then-verb like src/db/queries/*. Two kinds:
 *  - the leader's snapshot (job_counts, job_throughput, job_dashboard_marks; migration 006),
 *    run on the daemon's pool;
 *  - what a page reads, run through the dashboard's own pool, whose every statement carries
 *    a server-side time limit (src/dashboard/dashboard-db.ts).
 * No statement here counts or sorts finished history: counts are LIMITed ranges of an
 * index, lists are ranges of jobs_list / jobs_parent / the primary key read newest first.
 */
import type { Executor } from '../database.js';

/** Statuses a job can still move out of: counted exactly (up to the cap) in job_counts. */
export const ACTIVE_STATUSES = ['waiting', 'pending', 'queued', 'running'] as const;
export const FINAL_STATUSES = ['done', 'failed', 'cancelled'] as const;
export const ALL_STATUSES = [...ACTIVE_STATUSES, ...FINAL_STATUSES] as const;
export type JobStatus = (typeof ALL_STATUSES)[number];

export function isStatus(s: string): s is JobStatus {
  return (ALL_STATUSES as readonly string[]).includes(s);
}

// ---------------------------------------------------------------- leader's snapshot

/**
 * Queues that have rows in `status`, in name order, at most `limit`: a loose scan done by
 * hand, one index dive of jobs_claim per queue found (`GROUP BY queue` reads every entry
 * of the status instead: ~170 ms over 900,000 done rows on MariaDB 10.11).
 * Params per dive: status, after.
 */
export async function jobsQueuesWithStatus(db: Executor, status: string, limit = 1000): Promise<string[]> {
  const out: string[] = [];
  for (let after = ''; out.length < limit; ) {
    const rows = await db.run<Array<{ queue: string }>>(
      'jobsNextQueueWithStatus',
      'SELECT queue FROM jobs FORCE INDEX (jobs_claim) WHERE status = ? AND queue > ? ORDER BY queue LIMIT 1',
      [status, after],
    );
    const next = rows[0]?.queue;
    if (next === undefined) break;
    out.push(next);
    after = next;
  }
  return out;
}

/** Rows of (status, queue), counting at most `cap` index entries. Params: status, queue, cap. */
export async function jobsCountCapped(db: Executor, status: string, queue: string, cap: number): Promise<number> {
  const rows = await db.run<Array<{ n: number }>>(
    'jobsCountCapped',
    'SELECT COUNT(*) AS n FROM (SELECT 1 FROM jobs WHERE status = ? AND queue = ? LIMIT ?) t',
    [status, queue, cap],
  );
  return Number(rows[0]?.n ?? 0);
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
  const rows = await tx.run<Array<{ from_at: string; to_at: string }>>(
    'marksLockThroughput',
    `SELECT at AS from_at, LEAST(NOW(3) - INTERVAL ? SECOND, at + INTERVAL ? SECOND) AS to_at
     FROM job_dashboard_marks WHERE name = 'throughput' FOR UPDATE`,
    [lagS, maxWindowS],
  );
  const row = rows[0];
  if (!row || row.to_at <= row.from_at) return undefined;
  return { from: row.from_at, to: row.to_at };
}

/**
 * Adds the rows that finished in (from, to] to their minutes, and moves the mark to `to`.
 * A range of jobs_finished: O(jobs finished in the window). Params: from, to.
 */
export async function throughputAdd(tx: Executor, from: string, to: string): Promise<number> {
  const rows = await tx.run<Array<{ minute: string; queue: string; status: string; n: number }>>(
    'jobsThroughputSince',
    `SELECT DATE_FORMAT(finished_at, '%Y-%m-%d %H:%i:00') AS minute, queue, status, COUNT(*) AS n
     FROM jobs WHERE finished_at > ? AND finished_at <= ?
     GROUP BY 1, 2, 3`,
    [from, to],
  );
  if (rows.length > 0) {
    await tx.run(
      'throughputUpsert',
      'INSERT INTO job_throughput (minute, queue, status, n) VALUES ? ON DUPLICATE KEY UPDATE n = n + VALUES(n)',
      [rows.map((r) => [r.minute, r.queue, r.status, Number(r.n)])],
    );
  }
  await tx.run('marksMoveThroughput', "UPDATE job_dashboard_marks SET at = ? WHERE name = 'throughput'", [to]);
  return rows.reduce((s, r) => s + Number(r.n), 0);
}

/** Deletes throughput minutes older than `days`, a small batch at a time. Params: days, limit. */
export async function throughputPrune(db: Executor, days: number, limit: number): Promise<number> {
  const res = await db.run<{ affectedRows: number }>('throughputPrune', 'DELETE FROM job_throughput WHERE minute < NOW() - INTERVAL ? DAY LIMIT ?', [
    days,
    limit,
  ]);
  return res.affectedRows;
}

// ---------------------------------------------------------------- what pages read

export interface SnapshotCount extends CountRow {
  computedAt: string;
}

/** The whole snapshot (a few rows). No params. */
export async function countsSelect(db: Executor): Promise<SnapshotCount[]> {
  const rows = await db.run<Array<{ queue: string; status: string; n: number; capped: number; computed_at: string }>>(
    'countsSelect',
    'SELECT queue, status, n, capped, computed_at FROM job_counts ORDER BY queue, status',
  );
  return rows.map((r) => ({ queue: r.queue, status: r.status, n: Number(r.n), capped: Boolean(r.capped), computedAt: r.computed_at }));
}

export interface Mark {
  name: string;
  at: string;
  worker: string | null;
}

/** The leader's marks: when the snapshot was computed and by whom. No params. */
export async function marksSelect(db: Executor): Promise<Mark[]> {
  return db.run<Mark[]>('marksSelect', 'SELECT name, at, worker FROM job_dashboard_marks ORDER BY name');
}

export interface ThroughputRow {
  minute: string;
  queue: string;
  status: string;
  n: number;
}

/** Minutes of the last `minutes` minutes (≤ minutes × queues × 3 rows, a PK range). Params: minutes. */
export async function throughputSelectRecent(db: Executor, minutes: number): Promise<ThroughputRow[]> {
  const rows = await db.run<ThroughputRow[]>(
    'throughputSelectRecent',
    `SELECT minute, queue, status, n FROM job_throughput
     WHERE minute >= DATE_FORMAT(NOW() - INTERVAL ? MINUTE, '%Y-%m-%d %H:%i:00') ORDER BY minute`,
    [minutes],
  );
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/** The server's clock, to the minute and to the ms. No params. */
export async function serverNow(db: Executor): Promise<{ now: string; utcNow: string }> {
  const rows = await db.run<Array<{ now: string; utc_now: string }>>('serverNow', 'SELECT NOW(3) AS now, UTC_TIMESTAMP(3) AS utc_now');
  return { now: rows[0]?.now ?? '', utcNow: rows[0]?.utc_now ?? '' };
}

export interface QueueControlRow {
  name: string;
  paused: number;
  rate_per_sec: number | null;
  concurrency: number | null;
  timeout_ms: number | null;
}

/** Queue controls, at most `limit` rows. Params: limit. */
export async function queuesSelect(db: Executor, limit: number): Promise<QueueControlRow[]> {
  return db.run<QueueControlRow[]>('queuesSelect', 'SELECT name, paused, rate_per_sec, concurrency, timeout_ms FROM job_queues ORDER BY name LIMIT ?', [limit]);
}

export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  queues: string;
  started_at: string;
  heartbeat_at: string;
  /** ms since the last heartbeat, by the server's clock. */
  age_ms: number;
}

/** Live replicas, at most `limit`. Params: limit. */
export async function workersSelect(db: Executor, limit: number): Promise<WorkerRow[]> {
  const rows = await db.run<WorkerRow[]>(
    'workersSelect',
    `SELECT id, host, pid, version, queues, started_at, heartbeat_at,
            TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(3)) / 1000 AS age_ms
     FROM job_workers ORDER BY id LIMIT ?`,
    [limit],
  );
  return rows.map((r) => ({ ...r, age_ms: Math.round(Number(r.age_ms)) }));
}

export interface ScheduleRow {
  id: number;
  name: string;
  cron: string;
  timezone: string;
  queue: string;
  type: string;
  paused: number;
  overlap: string;
  catch_up: string;
  next_run_at: string | null;
  last_run_at: string | null;
  last_job_id: number | null;
  last_error: string | null;
  /** ms the next tick is overdue (UTC clock); ≤ 0: not due yet. */
  late_ms: number | null;
}

/** Schedules by name, at most `limit`. Params: limit. */
export async function schedulesSelect(db: Executor, limit: number): Promise<ScheduleRow[]> {
  const rows = await db.run<ScheduleRow[]>(
    'schedulesSelectDashboard',
    `SELECT id, name, cron, timezone, queue, type, paused, overlap, catch_up, next_run_at, last_run_at,
            last_job_id, LEFT(last_error, 500) AS last_error,
            TIMESTAMPDIFF(MICROSECOND, next_run_at, UTC_TIMESTAMP(3)) / 1000 AS late_ms
     FROM job_schedules ORDER BY name LIMIT ?`,
    [limit],
  );
  return rows.map((r) => ({ ...r, late_ms: r.late_ms == null ? null : Math.round(Number(r.late_ms)) }));
}

/** The columns a list shows. error is cut short: a list never carries big text. */
const LIST_COLUMNS = `id, queue, type, status, priority, attempts, max_attempts, paused, parent_id,
  run_at, created_at, started_at, finished_at, progress, worker, LEFT(error, 200) AS error`;

export interface JobListRow {
  id: number;
  queue: string;
  type: string;
  status: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  paused: number;
  parent_id: number | null;
  run_at: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  progress: number | null;
  worker: string | null;
  error: string | null;
}

/**
 * One (status, queue) range of jobs_list, newest first, below `beforeId`.
 * Params: status, queue, beforeId, limit.
 */
export async function jobsListByStatusQueue(db: Executor, status: string, queue: string, beforeId: number, limit: number): Promise<JobListRow[]> {
  return db.run<JobListRow[]>(
    'jobsListByStatusQueue',
    `SELECT ${LIST_COLUMNS} FROM jobs FORCE INDEX (jobs_list)
     WHERE list_key = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    [`${status}/${queue}`, beforeId, limit],
  );
}

/** Every job newest first, below `beforeId` (the primary key read backwards). Params: beforeId, limit. */
export async function jobsListAll(db: Executor, beforeId: number, limit: number): Promise<JobListRow[]> {
  return db.run<JobListRow[]>('jobsListAll', `SELECT ${LIST_COLUMNS} FROM jobs WHERE id < ? ORDER BY id DESC LIMIT ?`, [beforeId, limit]);
}

/** The newest id (the end of the primary key). No params. */
export async function jobsMaxId(db: Executor): Promise<number> {
  const rows = await db.run<Array<{ id: number | null }>>('jobsMaxId', 'SELECT MAX(id) AS id FROM jobs');
  return Number(rows[0]?.id ?? 0);
}

export interface SearchFilter {
  status?: string;
  queue?: string;
  /** Plain text looked for in the payload (a LIKE, % and _ escaped). */
  text: string;
}

/**
 * Payload search over the newest ids only: (lowestId, beforeId), newest first. The range
 * bounds the rows read, whatever the table holds. Params: lowestId, beforeId, pattern,
 * [status], [queue], limit.
 */
export async function jobsSearchRecent(db: Executor, filter: SearchFilter, lowestId: number, beforeId: number, limit: number): Promise<JobListRow[]> {
  const where = ['id > ?', 'id < ?', 'CAST(payload AS CHAR) LIKE ?'];
  const params: unknown[] = [lowestId, beforeId, `%${filter.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`];
  if (filter.status) {
    where.push('status = ?');
    params.push(filter.status);
  }
  if (filter.queue) {
    where.push('queue = ?');
    params.push(filter.queue);
  }
  params.push(limit);
  return db.run<JobListRow[]>(
    'jobsSearchRecent',
    `SELECT ${LIST_COLUMNS} FROM jobs FORCE INDEX (PRIMARY) WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`,
    params,
  );
}

export interface JobDetailRow extends JobListRow {
  payload: unknown;
  result: unknown;
  error: string | null;
  timeout_ms: number | null;
  concurrency_key: string | null;
  unique_key: string | null;
  cancel_requested_at: string | null;
  queued_at: string | null;
  cancelled_at: string | null;
  updated_at: string;
  deps_total: number | null;
  deps_done: number;
  deps_failed: number;
  on_child_failure: string;
  approval_required: number;
  approved_at: string | null;
  approved_by: string | null;
  wait_deadline: string | null;
  suspended_at: string | null;
  counted_as: string | null;
  cancel_cascaded_at: string | null;
  pause_cascaded: number;
  workflow_todo: number | null;
  schedule_id: number | null;
  scheduled_for: string | null;
  payload_bytes: number;
  result_bytes: number;
  /** Set by the read model: the text was longer than DETAIL_TEXT_LIMIT and is shown cut. */
  payload_cut?: boolean;
  result_cut?: boolean;
}

/** The most of payload or result a page shows; the rest is cut (and said so). */
export const DETAIL_TEXT_LIMIT = 64 * 1024;

/** One job by id, payload and result cut at DETAIL_TEXT_LIMIT characters. Params: id. */
export async function jobsSelectDetail(db: Executor, id: number): Promise<JobDetailRow | undefined> {
  const rows = await db.run<JobDetailRow[]>(
    'jobsSelectDetail',
    `SELECT ${LIST_COLUMNS.replace('LEFT(error, 200) AS error', 'error')},
            LEFT(CAST(payload AS CHAR), ${DETAIL_TEXT_LIMIT}) AS payload, LENGTH(payload) AS payload_bytes,
            LEFT(CAST(result AS CHAR), ${DETAIL_TEXT_LIMIT}) AS result, LENGTH(result) AS result_bytes,
            timeout_ms, concurrency_key, unique_key, cancel_requested_at, queued_at, cancelled_at, updated_at,
            deps_total, deps_done, deps_failed, on_child_failure, approval_required, approved_at, approved_by,
            wait_deadline, suspended_at, counted_as, cancel_cascaded_at, pause_cascaded, workflow_todo,
            schedule_id, scheduled_for
     FROM jobs WHERE id = ?`,
    [id],
  );
  return rows[0];
}

/** Children of a job in id order after `afterId` (jobs_parent). Params: parentId, afterId, limit. */
export async function jobsSelectChildren(db: Executor, parentId: number, afterId: number, limit: number): Promise<JobListRow[]> {
  return db.run<JobListRow[]>(
    'jobsSelectChildrenPage',
    `SELECT ${LIST_COLUMNS} FROM jobs WHERE parent_id = ? AND id > ? ORDER BY id LIMIT ?`,
    [parentId, afterId, limit],
  );
}

/** A version of a job for the refresh poll: changes whenever the row does. Params: id. */
export async function jobsSelectVersion(db: Executor, id: number): Promise<string | undefined> {
  const rows = await db.run<Array<{ v: string }>>('jobsSelectVersion', 'SELECT CONCAT(status, updated_at) AS v FROM jobs WHERE id = ?', [id]);
  return rows[0]?.v;
}

/** The parent id of a job (for walking up to a workflow's root). Params: id. */
export async function jobsSelectParentId(db: Executor, id: number): Promise<number | null | undefined> {
  const rows = await db.run<Array<{ parent_id: number | null }>>('jobsSelectParentId', 'SELECT parent_id FROM jobs WHERE id = ?', [id]);
  return rows.length === 0 ? undefined : rows[0]!.parent_id;
}
