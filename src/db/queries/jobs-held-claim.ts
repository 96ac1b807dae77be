/**
 * The writes of a claim held open (consumers/held-claim.ts): its rows were locked by the
 * claim and never written, so each is written once, claim and outcome together. Every
 * write is fenced on `pending` with no worker: a row that was not ours to take changes
 * nothing.
 */
import type { Executor } from '../database.js';
import type { Outcome } from './jobs-outcome.js';

/**
 * pending → done in one row write: the claim (worker, queued_at, the attempt) and the
 * outcome (result, started_at, finished_at). `claimAgeMs`: how long ago the claim was
 * made. Params: rows, worker, claim age. Returns rows changed.
 */
export async function jobsFinishHeld(tx: Executor, worker: string, outcomes: readonly Outcome[], claimAgeMs: number): Promise<number> {
  if (outcomes.length === 0) return 0;
  const now = performance.now();
  const doc = JSON.stringify(outcomes.map((o) => [o.id, o.attempts, o.result ?? null, Math.round(now - (o.startedAt ?? now))]));
  const r = await tx.run<{ affectedRows: number }>(
    'jobsFinishHeld',
    `UPDATE jobs j
     JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$[0]', att INT PATH '$[1]', res LONGTEXT PATH '$[2]', ran_ms BIGINT PATH '$[3]')) v
       ON j.id = v.id AND j.attempts = v.att
     SET j.status = 'done', j.worker = ?, j.result = v.res, j.key_wait = NULL, j.spare_bytes = NULL,
         j.queued_at = NOW(3) - INTERVAL ? MICROSECOND,
         j.started_at = NOW(3) - INTERVAL v.ran_ms * 1000 MICROSECOND, j.finished_at = NOW(3),
         j.progress = NULL, j.attempts = j.attempts + 1
     WHERE j.status = 'pending' AND j.worker IS NULL`,
    [doc, worker, Math.round(claimAgeMs * 1000)],
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
