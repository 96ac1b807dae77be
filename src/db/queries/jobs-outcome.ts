/**
 * How a run ends on its row: done, failed, cancelled, back to pending for a retry or a
 * hand-back, or parked waiting for its children — and the hand-back of claimed jobs that
 * never started. Every write is fenced on (id, attempts, worker, expected status), so a
 * late answer from a run that was rescued, cancelled or handed back changes nothing.
 */
import type { Executor } from '../database.js';
import { perRow, rowsById } from './per-row.js';

/** How a run ended, as written to its row. */
export interface Outcome {
  id: number;
  /** attempts value the row must have (the run's attempt number; claimed value if never started). */
  attempts: number;
  /** The status the row must still have: 'running', or 'queued' for a job cancelled before it started. */
  from: 'running' | 'queued';
  /** 'waiting': the handler enqueued children to wait for (not final; the attempt is not counted). */
  status: 'done' | 'pending' | 'failed' | 'cancelled' | 'waiting';
  /** JSON text of the result (done only). */
  result?: string | null;
  error?: string | null;
  /** pending only: next run no sooner than this many ms from now. */
  delayMs?: number;
  /** pending only: the attempt does not count (hand-back on shutdown). */
  uncount?: boolean;
  /**
   * from 'queued' only: the run did start (its `running` write was folded into this one):
   * count the attempt and set started_at to when it began.
   */
  started?: boolean;
  /** performance.now() when the run began: the statement turns it into "ms before NOW(3)". */
  startedAt?: number;
}

/**
 * Which rows a jobsFinish statement may change: every row of the batch, only rows without
 * a parent (the plain jobs: no counting to do), or only children (inside the transaction
 * that counts them into their parents).
 */
export type FinishScope = 'all' | 'plain' | 'children';

export interface FinishParams {
  worker: string;
  /** Outcomes of one group (outcomeGroupKey): same status, expected status and flags. */
  outcomes: readonly Outcome[];
  /** Default 'all'. */
  scope?: FinishScope;
}

/**
 * Writes a batch of outcomes that share status, expected status and flags in one
 * single-table statement, each row fenced on (id, attempts, worker, expected status), its
 * own values (attempts, result, error, delay, run time) picked by perRow. `waiting` parks
 * a job whose handler enqueued children to wait for: not final, the attempt not counted
 * (its next run is the same attempt, resumed).
 * Params: shared fields and per-row values in statement order, worker, expected status, ids.
 * Returns rows changed.
 */
export async function jobsFinish(db: Executor, { worker, outcomes, scope = 'all' }: FinishParams): Promise<number> {
  const first = outcomes[0];
  if (!first) return 0;
  const { rows, ids, unique } = rowsById(outcomes);
  if (!unique) {
    // One job twice (a late answer beside the current run's): a statement for each, so
    // each is fenced on its own attempts.
    const seen = new Set<number>();
    const once: Outcome[] = [];
    const again: Outcome[] = [];
    for (const o of rows) {
      (seen.has(o.id) ? again : once).push(o);
      seen.add(o.id);
    }
    return (await jobsFinish(db, { worker, outcomes: once, scope })) + (await jobsFinish(db, { worker, outcomes: again, scope }));
  }
  const { from, status } = first;
  const uncount = first.uncount ? 1 : 0;
  const started = first.started ? 1 : 0;
  const final = status === 'done' || status === 'failed' || status === 'cancelled' ? 1 : 0;
  // Ended by this write, or parked: the row leaves the queued/running states either way.
  const keepsResult = status === 'done' || status === 'waiting' ? 1 : 0;
  const scopeSql = scope === 'plain' ? 'AND j.parent_id IS NULL' : scope === 'children' ? 'AND j.parent_id IS NOT NULL' : '';
  // Measured as the statement is built, so batching delays do not shift started_at.
  const now = performance.now();
  // Only the values this status writes go in the statement.
  const pick = (use: boolean, values: (o: Outcome) => unknown) => (use ? perRow('j.id', ids, rows.map(values)) : { sql: '?', params: [null] });
  const res = pick(status === 'done', (o) => o.result ?? null);
  const err = pick(keepsResult === 0, (o) => o.error ?? null);
  const delayMs = pick(status === 'pending', (o) => o.delayMs ?? 0);
  const ranMs = pick(started === 1, (o) => (o.startedAt === undefined ? 0 : Math.round(now - o.startedAt)));
  const att = perRow('j.id', ids, rows.map((o) => o.attempts));
  const r = await db.run<{ affectedRows: number }>(
    'jobsFinish',
    `UPDATE jobs j
     SET j.status = ?,
         j.result = IF(? = 'done', ${res.sql}, j.result),
         j.error = IF(? = 1, j.error, ${err.sql}),
         j.run_at = IF(? = 'pending', NOW(3) + INTERVAL ${delayMs.sql} * 1000 MICROSECOND, j.run_at),
         j.finished_at = IF(? = 1, NOW(3), NULL),
         j.spare_bytes = IF(? = 1, NULL, j.spare_bytes),
         j.cancelled_at = IF(? = 'cancelled', NOW(3), j.cancelled_at),
         j.started_at = IF(? = 1, NOW(3) - INTERVAL ${ranMs.sql} * 1000 MICROSECOND, j.started_at),
         j.progress = IF(? = 1, NULL, j.progress),
         j.attempts = j.attempts - ? + ?,
         j.queued_at = IF(? = 1, j.queued_at, NULL),
         j.suspended_at = IF(? = 'waiting', NOW(3), j.suspended_at),
         j.counted_as = IF(? = 1 AND j.parent_id IS NOT NULL, IF(? = 'done', 'done', 'failed'), j.counted_as)
     WHERE j.id IN (?) AND j.attempts = ${att.sql} AND j.worker = ? AND j.status = ? ${scopeSql}`,
    // One line here per line of the statement that takes parameters, in order.
    [
      status,
      status, ...res.params,
      keepsResult, ...err.params,
      status, ...delayMs.params,
      final,
      final,
      status,
      started, ...ranMs.params,
      started,
      uncount, started,
      final,
      status,
      final, status,
      ids, ...att.params, worker, from,
    ],
  );
  return r.affectedRows;
}

/** Outcomes that one jobsFinish statement can carry together. */
export function outcomeGroupKey(o: Outcome): string {
  return `${o.from}|${o.status}|${o.uncount ? 1 : 0}|${o.started ? 1 : 0}`;
}

/** Hands claimed, not started jobs back unchanged. Params: ids, worker. */
export async function jobsReleaseQueued(db: Executor, worker: string, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsReleaseQueued',
    `UPDATE jobs SET status = 'pending', queued_at = NULL WHERE id IN (?) AND worker = ? AND status = 'queued'`,
    [ids, worker],
  );
  return r.affectedRows;
}
