/**
 * What the dashboard's job pages read: lists, payload search, one job and its children.
 * Run through the dashboard's own pool, whose every statement carries a server-side time
 * limit (src/dashboard/dashboard-db.ts). No statement here sorts finished history: lists
 * are ranges of jobs_claim / jobs_parent / the primary key read newest first.
 */
import type { Executor } from '../database.js';
import { num, numOrNull, text, textOrNull, type Row } from './rows.js';

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

function jobListRowOf(r: Row): JobListRow {
  return {
    id: num(r.id),
    queue: text(r.queue),
    type: text(r.type),
    status: text(r.status),
    priority: num(r.priority),
    attempts: num(r.attempts),
    max_attempts: num(r.max_attempts),
    paused: num(r.paused),
    parent_id: numOrNull(r.parent_id),
    run_at: text(r.run_at),
    created_at: text(r.created_at),
    started_at: textOrNull(r.started_at),
    finished_at: textOrNull(r.finished_at),
    progress: numOrNull(r.progress),
    worker: textOrNull(r.worker),
    error: textOrNull(r.error),
  };
}

/** Where a list page starts: below this (run_at, id), the previous page's last row. */
export interface ListCursor {
  /** run_at as the server wrote it. */
  runAt: string;
  id: number;
}

/** One index-ordered range of jobs_claim: its WHERE and params. */
export interface ListRange {
  where: string;
  params: unknown[];
}

/** Lane-0 priorities of one queue's pending list read at most (each is a range of its own). */
export const MAX_LISTED_PRIORITIES = 20;

/**
 * The ranges of jobs_claim (status, queue, claim_lane, claim_priority, run_at) that hold
 * one (status, queue), each in (run_at, id) order. Every status but pending has NULL lane
 * and priority, so it is one range; pending is one per lane, lane 0 (can start now) one
 * per priority, found by a loose scan done by hand (one index dive each). Lists use the
 * claim's index instead of one of their own: an index keyed on status moves its entry
 * when a job finishes, and that move cost ~a fifth of the database's work per job
 * (docs/benchmarks.md, seventh pass). `complete` is false when the queue has more lane-0
 * priorities than MAX_LISTED_PRIORITIES (the others are left out). Params per dive: queue, after.
 */
export async function statusQueueRanges(db: Executor, status: string, queue: string): Promise<{ ranges: ListRange[]; complete: boolean }> {
  if (status !== 'pending') {
    return { ranges: [{ where: 'status = ? AND queue = ? AND claim_lane IS NULL AND claim_priority IS NULL', params: [status, queue] }], complete: true };
  }
  const lane = (n: number): ListRange => ({ where: "status = 'pending' AND queue = ? AND claim_lane = ? AND claim_priority IS NULL", params: [queue, n] });
  const ranges = [lane(1), lane(2), lane(3)];
  // Below INT's least value: the first dive finds the least priority.
  for (let after = -2147483649; ; ) {
    const rows = await db.run(
      'jobsNextPendingPriority',
      `SELECT claim_priority FROM jobs FORCE INDEX (jobs_claim)
       WHERE status = 'pending' AND queue = ? AND claim_lane = 0 AND claim_priority > ? ORDER BY claim_priority LIMIT 1`,
      [queue, after],
    );
    if (rows[0] === undefined) return { ranges, complete: true };
    if (ranges.length === 3 + MAX_LISTED_PRIORITIES) return { ranges, complete: false };
    after = num(rows[0].claim_priority);
    ranges.push({ where: "status = 'pending' AND queue = ? AND claim_lane = 0 AND claim_priority = ?", params: [queue, after] });
  }
}

/**
 * One range (statusQueueRanges), newest first by (run_at, id), below `before`: read in
 * index order, never sorted. Params: range params, cursor, limit.
 */
export async function jobsListRange(db: Executor, range: ListRange, before: ListCursor | undefined, limit: number): Promise<JobListRow[]> {
  const cursor = before
    ? { sql: 'AND (run_at < ? OR (run_at = ? AND id < ?))', params: [before.runAt, before.runAt, before.id] }
    : { sql: '', params: [] };
  const rows = await db.run(
    'jobsListRange',
    `SELECT ${LIST_COLUMNS} FROM jobs FORCE INDEX (jobs_claim)
     WHERE ${range.where} ${cursor.sql} ORDER BY run_at DESC, id DESC LIMIT ?`,
    [...range.params, ...cursor.params, limit],
  );
  return rows.map(jobListRowOf);
}

/** Every job newest first, below `beforeId` (the primary key read backwards). Params: beforeId, limit. */
export async function jobsListAll(db: Executor, beforeId: number, limit: number): Promise<JobListRow[]> {
  const rows = await db.run('jobsListAll', `SELECT ${LIST_COLUMNS} FROM jobs WHERE id < ? ORDER BY id DESC LIMIT ?`, [beforeId, limit]);
  return rows.map(jobListRowOf);
}

/** The newest id (the end of the primary key). No params. */
export async function jobsMaxId(db: Executor): Promise<number> {
  const rows = await db.run('jobsMaxId', 'SELECT MAX(id) AS id FROM jobs');
  return num(rows[0]?.id ?? 0);
}

export interface SearchParams {
  status?: string;
  queue?: string;
  /** Plain text looked for in the payload (a LIKE, % and _ escaped). */
  text: string;
  /** Ids above this one only: the window the search reads. */
  lowestId: number;
  /** Ids below this one (the previous page's last). */
  beforeId: number;
  limit: number;
}

/**
 * Payload search over the newest ids only: (lowestId, beforeId), newest first. The range
 * bounds the rows read, whatever the table holds. Params: lowestId, beforeId, pattern,
 * [status], [queue], limit.
 */
export async function jobsSearchRecent(db: Executor, search: SearchParams): Promise<JobListRow[]> {
  const where = ['id > ?', 'id < ?', 'CAST(payload AS CHAR) LIKE ?'];
  const params: unknown[] = [search.lowestId, search.beforeId, `%${search.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`];
  if (search.status) {
    where.push('status = ?');
    params.push(search.status);
  }
  if (search.queue) {
    where.push('queue = ?');
    params.push(search.queue);
  }
  params.push(search.limit);
  const rows = await db.run(
    'jobsSearchRecent',
    `SELECT ${LIST_COLUMNS} FROM jobs FORCE INDEX (PRIMARY) WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`,
    params,
  );
  return rows.map(jobListRowOf);
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
  /** Bytes of the payload's and the result's JSON text; null when the column is NULL. */
  payload_bytes: number | null;
  result_bytes: number | null;
  /** Set by the read model: the text was longer than DETAIL_TEXT_LIMIT and is shown cut. */
  payload_cut?: boolean;
  result_cut?: boolean;
}

/** In the order of jobsSelectDetail's columns (the JSON API shows them so). */
function jobDetailRowOf(r: Row): JobDetailRow {
  return {
    ...jobListRowOf(r),
    payload: textOrNull(r.payload),
    payload_bytes: numOrNull(r.payload_bytes),
    result: textOrNull(r.result),
    result_bytes: numOrNull(r.result_bytes),
    timeout_ms: numOrNull(r.timeout_ms),
    concurrency_key: textOrNull(r.concurrency_key),
    unique_key: textOrNull(r.unique_key),
    cancel_requested_at: textOrNull(r.cancel_requested_at),
    queued_at: textOrNull(r.queued_at),
    cancelled_at: textOrNull(r.cancelled_at),
    updated_at: text(r.updated_at),
    deps_total: numOrNull(r.deps_total),
    deps_done: num(r.deps_done),
    deps_failed: num(r.deps_failed),
    on_child_failure: text(r.on_child_failure),
    approval_required: num(r.approval_required),
    approved_at: textOrNull(r.approved_at),
    approved_by: textOrNull(r.approved_by),
    wait_deadline: textOrNull(r.wait_deadline),
    suspended_at: textOrNull(r.suspended_at),
    counted_as: textOrNull(r.counted_as),
    cancel_cascaded_at: textOrNull(r.cancel_cascaded_at),
    pause_cascaded: num(r.pause_cascaded),
    workflow_todo: numOrNull(r.workflow_todo),
    schedule_id: numOrNull(r.schedule_id),
    scheduled_for: textOrNull(r.scheduled_for),
  };
}

/** The most of payload or result a page shows; the rest is cut (and said so). */
export const DETAIL_TEXT_LIMIT = 64 * 1024;

/** One job by id, payload and result cut at DETAIL_TEXT_LIMIT characters. Params: id. */
export async function jobsSelectDetail(db: Executor, id: number): Promise<JobDetailRow | undefined> {
  const rows = await db.run(
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
  const row = rows[0];
  return row ? jobDetailRowOf(row) : undefined;
}

export interface ChildrenPageParams {
  parentId: number;
  /** Start past this id (the previous page's last); 0 for the first page. */
  afterId: number;
  limit: number;
}

/** Children of a job in id order after `afterId` (jobs_parent). Params: parentId, afterId, limit. */
export async function jobsSelectChildren(db: Executor, { parentId, afterId, limit }: ChildrenPageParams): Promise<JobListRow[]> {
  const rows = await db.run(
    'jobsSelectChildrenPage',
    `SELECT ${LIST_COLUMNS} FROM jobs WHERE parent_id = ? AND id > ? ORDER BY id LIMIT ?`,
    [parentId, afterId, limit],
  );
  return rows.map(jobListRowOf);
}

/** A version of a job for the refresh poll: changes whenever the row does. Params: id. */
export async function jobsSelectVersion(db: Executor, id: number): Promise<string | undefined> {
  const rows = await db.run('jobsSelectVersion', 'SELECT CONCAT(status, updated_at) AS v FROM jobs WHERE id = ?', [id]);
  const v = rows[0]?.v;
  return v == null ? undefined : text(v);
}

/** The parent id of a job (for walking up to a workflow's root). Params: id. */
export async function jobsSelectParentId(db: Executor, id: number): Promise<number | null | undefined> {
  const rows = await db.run('jobsSelectParentId', 'SELECT parent_id FROM jobs WHERE id = ?', [id]);
  const row = rows[0];
  return row ? numOrNull(row.parent_id) : undefined;
}
