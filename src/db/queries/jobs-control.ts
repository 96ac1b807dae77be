/**
 * What users ask of jobs through their rows, as the replicas see it: cancel requests on
 * jobs a replica holds (and rows taken from it meanwhile), and cancel requests on jobs
 * that have not started, which the leader ends.
 */
import type { Executor } from '../database.js';
import { flag, num, textOrNull, type Row } from './rows.js';
import type { RunRef } from './jobs-run.js';

/** A held job that its run must let go: cancel requested, or no longer ours. */
export interface HeldJobChange {
  id: number;
  cancelRequested: boolean;
  /** Still ours (same worker, attempts, queued/running); false means taken away. */
  stillOurs: boolean;
}

/**
 * Among the jobs this worker holds, those with a cancel request or no longer ours.
 * Primary-key lookups only. Params: held ids, worker.
 */
export async function jobsHeldChanges(db: Executor, worker: string, held: readonly RunRef[]): Promise<HeldJobChange[]> {
  if (held.length === 0) return [];
  const claimed = new Map(held.map((h) => [h.id, h.attempts]));
  const rows = await db.run(
    'jobsHeldChanges',
    `SELECT id, status, worker, attempts, cancel_requested_at IS NOT NULL AS cancel
     FROM jobs
     WHERE id IN (?)
       AND (cancel_requested_at IS NOT NULL OR status NOT IN ('queued', 'running') OR worker IS NULL OR worker <> ?)`,
    [held.map((h) => h.id), worker],
  );
  return rows.map((r) => heldJobChangeOf(r, worker, claimed));
}

/** One row of jobsHeldChanges, judged against the attempts each run was claimed with. */
function heldJobChangeOf(r: Row, worker: string, claimed: ReadonlyMap<number, number>): HeldJobChange {
  const id = num(r.id);
  const status = r.status;
  // A run's row holds the claimed attempts until its batched `running` write lands, then one more.
  const attempts = claimed.get(id);
  const rowAttempts = num(r.attempts);
  const sameRun = attempts !== undefined && (rowAttempts === attempts || rowAttempts === attempts + 1);
  return {
    id,
    cancelRequested: flag(r.cancel),
    stillOurs: textOrNull(r.worker) === worker && (status === 'queued' || status === 'running') && sameRun,
  };
}

/**
 * Cancels up to `limit` pending jobs whose cancel was requested (leader only; the caller
 * repeats while a batch comes back full). Children are left to the workflow publisher,
 * which counts them into their parents in the same transaction (jobsCancelPendingChildren).
 * Params: limit.
 */
export async function jobsCancelPending(db: Executor, limit: number): Promise<number> {
  const r = await db.run<{ affectedRows: number }>(
    'jobsCancelPending',
    `UPDATE jobs SET status = 'cancelled', cancelled_at = NOW(3), finished_at = NOW(3), spare_bytes = NULL,
       error = 'cancelled before it started (cancel_requested_at was set)'
     WHERE cancel_pending = 1 AND parent_id IS NULL
     LIMIT ?`,
    [limit],
  );
  return r.affectedRows;
}
