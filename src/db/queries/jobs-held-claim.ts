/**
 * The writes of a claim held open (consumers/held-claim.ts): its rows were locked by the
 * claim and never written, so each is written once, claim and outcome together. Every
 * write is fenced on `pending` with no worker: a row that was not ours to take changes
 * nothing.
 */
import type { Executor } from '../database.js';
import type { Outcome } from './jobs-outcome.js';
import { perRow, rowsById } from './per-row.js';

/**
 * pending → done in one row write: the claim (worker, queued_at, the attempt) and the
 * outcome (result, started_at, finished_at). `claimAgeMs`: how long ago the claim was
 * made. Params: worker, result, claim age, µs since each start (perRow), ids. Returns rows
 * changed.
 *
 * A single-table UPDATE with each row's values picked by perRow: the rows are locked by
 * the claim since it read them, so there is no attempt to fence on.
 */
export async function jobsFinishHeld(tx: Executor, worker: string, outcomes: readonly Outcome[], claimAgeMs: number): Promise<number> {
  if (outcomes.length === 0) return 0;
  const now = performance.now();
  // A claim's ids are distinct: its rows were each locked once.
  const { rows, ids } = rowsById(outcomes);
  const result = perRow('id', ids, rows.map((o) => o.result ?? null));
  const ranUs = perRow('id', ids, rows.map((o) => Math.round((now - (o.startedAt ?? now)) * 1000)));
  const r = await tx.run<{ affectedRows: number }>(
    'jobsFinishHeld',
    `UPDATE jobs
     SET status = 'done', worker = ?, result = ${result.sql}, key_wait = NULL, spare_bytes = NULL,
         queued_at = NOW(3) - INTERVAL ? MICROSECOND,
         started_at = NOW(3) - INTERVAL ${ranUs.sql} MICROSECOND, finished_at = NOW(3),
         progress = NULL, attempts = attempts + 1
     WHERE id IN (?) AND status = 'pending' AND worker IS NULL`,
    [worker, ...result.params, Math.round(claimAgeMs * 1000), ...ranUs.params, ids],
  );
  return r.affectedRows;
}

/** pending → running (the attempt counted): runs that started and have not ended. Params: worker, ids. */
export async function jobsMarkRunningHeld(tx: Executor, worker: string, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await tx.run<{ affectedRows: number }>(
    'jobsMarkRunningHeld',
    `UPDATE jobs SET status = 'running', worker = ?, queued_at = NOW(3), started_at = NOW(3), attempts = attempts + 1, key_wait = NULL, progress = NULL,
       spare_bytes = LEFT(spare_bytes, 16)
     WHERE id IN (?) AND status = 'pending' AND worker IS NULL`,
    [worker, ids],
  );
  return r.affectedRows;
}
