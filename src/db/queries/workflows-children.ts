/**
 * A running job's own children (DESIGN.md "Workflows"): adding them under its run
 * (ctx.enqueue with `wait`: lock the run, insert with jobsInsert, raise the seal) and
 * reading them back page by page (ctx.children()).
 */
import type { Executor } from '../database.js';
import type { RunRef } from './jobs-run.js';
import { json, num, text, textOrNull, type Row } from './rows.js';

/**
 * Locks the row of a run this worker holds (queued, or running as attempt attempts + 1)
 * with no cancel request: children can be added under it. Params: id, worker, attempts.
 */
export async function jobsLockOwnRun(tx: Executor, worker: string, run: RunRef): Promise<boolean> {
  const rows = await tx.run(
    'jobsLockOwnRun',
    `SELECT id FROM jobs
     WHERE id = ? AND worker = ? AND ((status = 'running' AND attempts = ?) OR (status = 'queued' AND attempts = ?))
       AND cancel_requested_at IS NULL
     FOR UPDATE`,
    [run.id, worker, run.attempts + 1, run.attempts],
  );
  return rows.length === 1;
}

export interface AddDepsParams {
  /** The running job (locked by jobsLockOwnRun). */
  id: number;
  /** Children just inserted under it. */
  n: number;
  /** on_child_failure to set; null keeps the row's. */
  onChildFailure: 'fail' | 'continue' | null;
}

/**
 * Seals a running job over `n` more children (deps_total + n), and sets its policy if
 * given. Params: n, policy, id.
 */
export async function jobsAddDeps(tx: Executor, { id, n, onChildFailure }: AddDepsParams): Promise<void> {
  await tx.run(
    'jobsAddDeps',
    'UPDATE jobs SET deps_total = COALESCE(deps_total, 0) + ?, on_child_failure = COALESCE(?, on_child_failure) WHERE id = ?',
    [n, onChildFailure, id],
  );
}

/** A child as a page of jobsSelectChildren holds it (ctx.children() yields these). */
export interface ChildRow {
  id: number;
  type: string;
  status: string;
  result: unknown;
  error: string | null;
}

export interface ChildrenPageParams {
  parentId: number;
  /** Start past this id (the previous page's last); 0 for the first page. */
  afterId: number;
  limit: number;
}

/**
 * One page of a parent's children after `afterId`, in id order: a range of jobs_parent,
 * never more than `limit` rows in memory. Params: parent, after id, limit.
 */
export async function jobsSelectChildren(db: Executor, { parentId, afterId, limit }: ChildrenPageParams): Promise<ChildRow[]> {
  const rows = await db.run(
    'jobsSelectChildren',
    'SELECT id, type, status, result, error FROM jobs WHERE parent_id = ? AND id > ? ORDER BY id LIMIT ?',
    [parentId, afterId, limit],
  );
  return rows.map(childRowOf);
}

function childRowOf(r: Row): ChildRow {
  return { id: num(r.id), type: text(r.type), status: text(r.status), result: json(r.result) ?? null, error: textOrNull(r.error) };
}
