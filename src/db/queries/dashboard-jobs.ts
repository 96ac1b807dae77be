/**
 * What the dashboard's job pages read: lists, payload search, one job and its children.
 * Run through the dashboard's own pool, whose every statement carries a server-side time
 * limit (src/dashboard/dashboard-db.ts). No statement here sorts finished history: lists
 * are ranges of jobs_list / jobs_parent / the primary key read newest first, or the few
 * rows replicas hold (queued, running) from jobs_claim.
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

export interface StatusQueuePageParams {
  status: string;
  queue: string;
  /** Ids below this one (the previous page's last). */
  beforeId: number;
  limit: number;
}

/** Statuses whose rows a replica holds: few (prefetch and concurrency per replica), listed from jobs_claim. */
const HELD_STATUSES: ReadonlySet<string> = new Set(['queued', 'running']);

/**
 * Where one (status, queue) lives, as an index and a WHERE (migration 007): queued and
 * running in their range of jobs_claim (what replicas hold, so sorting it is cheap);
 * pending in the 'pending/queue' range of jobs_list, which also holds the claimed rows
 * (skipped: at most what replicas hold); every other status in its own range of jobs_list.
 * Params of `where`: `params`.
 */
export function statusQueueRange(status: string, queue: string): { index: string; where: string; params: unknown[] } {
  if (HELD_STATUSES.has(status)) return { index: 'jobs_claim', where: 'status = ? AND queue = ?', params: [status, queue] };
  if (status === 'pending') return { index: 'jobs_list', where: "list_key = ? AND status = 'pending'", params: [`pending/${queue}`] };
  return { index: 'jobs_list', where: 'list_key = ?', params: [`${status}/${queue}`] };
}

/**
 * One (status, queue) range (statusQueueRange), newest first, below `beforeId`.
 * Params: status, queue, beforeId, limit.
 */
export async function jobsListByStatusQueue(db: Executor, { status, queue, beforeId, limit }: StatusQueuePageParams): Promise<JobListRow[]> {
  const range = statusQueueRange(status, queue);
  const rows = await db.run(
    'jobsListByStatusQueue',
    `SELECT ${LIST_COLUMNS} FROM jobs FORCE INDEX (${range.index})
     WHERE ${range.where} AND id < ? ORDER BY id DESC LIMIT ?`,
    [...range.params, beforeId, limit],
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
