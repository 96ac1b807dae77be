/**
 * The leader's ends of workflow rows that no run ends (DESIGN.md "Workflows"): releases
 * whose seal or approval came last, waiting jobs cancelled or past their deadline, and
 * pending children cancelled before they started. The callers lock the rows first
 * (jobsLockEnding) and count what ended into the parents (workflows-counting.ts).
 */
import type { Executor } from '../database.js';
import { countedAsAssignment } from './workflows-counting.js';
import { jobsSelectTodo, TODO } from './workflows-todo.js';

/**
 * Releases waiting jobs that may run (sealed, every child ended, approval given) whose
 * release no child's transaction made: the seal or the approval came last. Not a final
 * state, so nothing is counted. Served by jobs_workflow_todo. Params: limit.
 */
export async function jobsReleaseReady(db: Executor, limit: number): Promise<number[]> {
  const ids = await jobsSelectTodo(db, 'release', limit);
  if (ids.length === 0) return [];
  const r = await db.run<{ affectedRows: number }>(
    'jobsReleaseReady',
    `UPDATE jobs SET status = 'pending', run_at = GREATEST(run_at, NOW(3)) WHERE id IN (?) AND workflow_todo = ?`,
    [ids, TODO.release],
  );
  return r.affectedRows === ids.length ? ids : ids.slice(0, r.affectedRows);
}

export interface EndWaitingParams {
  /** Locked waiting jobs. */
  ids: readonly number[];
  /** cancelled: a cancel was requested; failed: the deadline passed. */
  status: 'failed' | 'cancelled';
  error: string;
}

/**
 * Ends locked waiting jobs: cancelled (cancel requested) or failed (deadline). A job that
 * ends while it waits also gets cancel_requested_at (if it had none): that is what cancels
 * its children that have not ended (workflow_todo 5). Params: status, error, ids.
 */
export async function jobsEndWaiting(tx: Executor, { ids, status, error }: EndWaitingParams): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await tx.run<{ affectedRows: number }>(
    'jobsEndWaiting',
    `UPDATE jobs
     SET status = ?, error = ?, finished_at = NOW(3), cancelled_at = IF(? = 'cancelled', NOW(3), cancelled_at),
         cancel_requested_at = COALESCE(cancel_requested_at, NOW(3)), ${countedAsAssignment('?')}
     WHERE id IN (?) AND status = 'waiting'`,
    [status, error, status, status, ids],
  );
  return r.affectedRows;
}

/** Cancels locked pending children that have a cancel request. Params: ids. */
export async function jobsCancelPendingChildren(tx: Executor, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await tx.run<{ affectedRows: number }>(
    'jobsCancelPendingChildren',
    `UPDATE jobs
     SET status = 'cancelled', cancelled_at = NOW(3), finished_at = NOW(3),
         error = 'cancelled before it started (cancel_requested_at was set)', ${countedAsAssignment("'cancelled'")}
     WHERE id IN (?) AND workflow_todo = ?`,
    [ids, TODO.cancelPendingChild],
  );
  return r.affectedRows;
}
