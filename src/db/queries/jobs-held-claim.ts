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
 * made. Params: worker, the result (or the ids and each row's), claim age, the ids and each
 * row's µs since its start, the ids. Returns rows changed.
 *
 * A single-table UPDATE: the rows are locked by the claim since it read them, so there is
 * no attempt to fence on, and each row's own values are picked by `ELT(INTERVAL(id, …))`,
 * a binary search over the ascending ids. A join on JSON_TABLE cost a fifth more server
 * time: the joined table is not the first, so MariaDB stages the rows in a temporary
 * table and reads each again before it updates it (docs/benchmarks.md, ninth pass).
 */
export async function jobsFinishHeld(tx: Executor, worker: string, outcomes: readonly Outcome[], claimAgeMs: number): Promise<number> {
  if (outcomes.length === 0) return 0;
  const now = performance.now();
  const rows = [...outcomes].sort((a, b) => a.id - b.id);
  const ids = rows.map((o) => o.id);
  const ranUs = rows.map((o) => Math.round((now - (o.startedAt ?? now)) * 1000));
  const results = rows.map((o) => o.result ?? null);
  // Jobs of one kind often return the same (or nothing): one value, not a list to pick from.
  const oneResult = results.every((r) => r === results[0]);
  const r = await tx.run<{ affectedRows: number }>(
    'jobsFinishHeld',
    `UPDATE jobs
     SET status = 'done', worker = ?, result = ${oneResult ? '?' : 'ELT(INTERVAL(id, ?), ?)'}, key_wait = NULL, spare_bytes = NULL,
         queued_at = NOW(3) - INTERVAL ? MICROSECOND,
         started_at = NOW(3) - INTERVAL ELT(INTERVAL(id, ?), ?) MICROSECOND, finished_at = NOW(3),
         progress = NULL, attempts = attempts + 1
     WHERE id IN (?) AND status = 'pending' AND worker IS NULL`,
    [worker, ...(oneResult ? [results[0]] : [ids, results]), Math.round(claimAgeMs * 1000), ids, ranUs, ids],
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
