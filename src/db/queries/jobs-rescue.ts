/**
 * The leader's rescue of work its replica can no longer finish: the jobs of dead workers
 * (queued ones back unchanged, running ones as a failed attempt), of workers that have no
 * row at all, and running jobs far past their timeout.
 *
 * Each sweep reads its rows in batches by key — ids past the previous batch's last, in id
 * order — until a batch comes back short, and each batch is one short transaction that
 * locks its rows by primary key in ascending id (the lock order of workflows-counting.ts).
 * The reads are not locking: a row that moved meanwhile fails the fence of the writes and
 * is left alone.
 */
import { retryDelaySql } from '../../backoff.js';
import type { Database, Executor } from '../database.js';
import { inTransaction } from '../transaction.js';
import { idsOf, text } from './rows.js';
import { countedAsAssignment, jobsCountIntoParents, lockedOf } from './workflows-counting.js';

/** Rows per rescue transaction. */
export const RESCUE_BATCH = 1000;

/** What one rescue did. */
export interface Rescued {
  /** queued → pending, unchanged. */
  requeued: number;
  /** running → pending as a failed attempt, or failed when it was the last. */
  rescued: number;
}

/**
 * Workers named by queued or running jobs that have no job_workers row at all (a replica
 * whose row was removed while it still held jobs), once those jobs have not moved for
 * dead-after; and workers of leases as old with no such row (a held claim whose lease
 * was left behind: its rows are pending and every claim skips them until it is resolved).
 * Reads only the queued and running entries of jobs_claim; at most 1,000 of them a look
 * (the rest the next look: their workers' jobs are rescued whole).
 * Params: dead-after ms (twice).
 */
export async function jobsSelectOrphanWorkers(db: Executor, deadAfterMs: number): Promise<string[]> {
  const rows = await db.run(
    'jobsSelectOrphanWorkers',
    `(SELECT j.worker FROM jobs j
      WHERE j.status IN ('queued', 'running') AND j.worker IS NOT NULL
        AND j.updated_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND
        AND NOT EXISTS (SELECT 1 FROM job_workers w WHERE w.id = j.worker)
      LIMIT 1000)
     UNION ALL
     (SELECT l.worker FROM job_leases l
      WHERE l.created_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND
        AND NOT EXISTS (SELECT 1 FROM job_workers w WHERE w.id = l.worker)
      LIMIT 100)`,
    [deadAfterMs, deadAfterMs],
  );
  // Deduplicated here: DISTINCT would cost a temporary table.
  return [...new Set(rows.map((r) => text(r.worker)))];
}

export interface HeldByParams {
  workers: readonly string[];
  /** Start past this id (the previous batch's last); 0 for the first batch. */
  afterId: number;
  limit: number;
}

/**
 * Ids of the queued and running jobs of these workers, in id order past `afterId`. Reads
 * the queued and running entries of jobs_claim (what replicas hold: bounded by their
 * claims and concurrency) and sorts those; forced, because with ORDER BY id LIMIT the
 * optimizer may otherwise walk the primary key through the whole table.
 * Params: workers, after id, limit.
 */
export async function jobsSelectHeldBy(db: Executor, { workers, afterId, limit }: HeldByParams): Promise<number[]> {
  if (workers.length === 0) return [];
  const rows = await db.run(
    'jobsSelectHeldBy',
    `SELECT id FROM jobs FORCE INDEX (jobs_claim)
     WHERE status IN ('queued', 'running') AND worker IN (?) AND id > ?
     ORDER BY id LIMIT ?`,
    [workers, afterId, limit],
  );
  return idsOf(rows);
}

/**
 * Rescues the jobs of dead workers, batch by batch until a short one. Params: worker ids,
 * reason, rows per batch.
 */
export async function jobsRescueOf(db: Database, workers: readonly string[], reason: string, batchSize = RESCUE_BATCH): Promise<Rescued> {
  const total: Rescued = { requeued: 0, rescued: 0 };
  for (let afterId = 0; ; ) {
    const ids = await jobsSelectHeldBy(db, { workers, afterId, limit: batchSize });
    const last = ids.at(-1);
    if (last === undefined) return total;
    const r = await jobsRescueBatch(db, workers, ids, reason);
    total.requeued += r.requeued;
    total.rescued += r.rescued;
    if (ids.length < batchSize) return total;
    afterId = last;
  }
}

/**
 * One batch of a rescue, in one transaction: queued → pending unchanged; running →
 * pending as a failed attempt, with the backoff of any failed attempt (src/backoff.ts),
 * or failed when no attempt is left — counted into its parent in the same transaction.
 * Each write is fenced on the row still being the worker's, in that status.
 * Params: ids, workers, reason.
 */
export async function jobsRescueBatch(db: Database, workers: readonly string[], ids: readonly number[], reason: string): Promise<Rescued> {
  if (workers.length === 0 || ids.length === 0) return { requeued: 0, rescued: 0 };
  return inTransaction(db, 'jobsRescue', async (tx) => {
    const q = await tx.run<{ affectedRows: number }>(
      'jobsRequeueOf',
      `UPDATE jobs SET status = 'pending', queued_at = NULL WHERE id IN (?) AND status = 'queued' AND worker IN (?)`,
      [ids, workers],
    );
    // Children whose last attempt this was: locked here, so the update below ends exactly these.
    const ending = await tx.run(
      'jobsLockRescuedChildren',
      `SELECT id, parent_id, counted_as FROM jobs
       WHERE id IN (?) AND status = 'running' AND worker IN (?) AND attempts >= max_attempts AND parent_id IS NOT NULL
       ORDER BY id FOR UPDATE`,
      [ids, workers],
    );
    const r = await tx.run<{ affectedRows: number }>(
      'jobsRescueOf',
      `UPDATE jobs
       SET error = CONCAT(?, ' (worker ', worker, ', attempt ', attempts, ')'),
           run_at = IF(attempts >= max_attempts, run_at, NOW(3) + INTERVAL ${retryDelaySql('attempts')} * 1000 MICROSECOND),
           finished_at = IF(attempts >= max_attempts, NOW(3), NULL),
           counted_as = IF(parent_id IS NOT NULL AND attempts >= max_attempts, 'failed', counted_as),
           status = IF(attempts >= max_attempts, 'failed', 'pending'),
           queued_at = NULL
       WHERE id IN (?) AND status = 'running' AND worker IN (?)`,
      [reason, ids, workers],
    );
    await jobsCountIntoParents(tx, ending.map((row) => ({ ...lockedOf(row), status: 'failed' as const })));
    return { requeued: q.affectedRows, rescued: r.affectedRows };
  });
}

export interface OverdueParams {
  /** SLUICE_JOB_TIMEOUT_MS: the timeout of a job whose row and queue set none. */
  defaultTimeoutMs: number;
  /** How long past its timeout a run may go before the leader ends it. */
  graceMs: number;
  /** Rows per batch. */
  batchSize?: number;
}

/** A running job past its timeout plus the grace. Params: default timeout ms, grace ms. */
const OVERDUE = `j.status = 'running'
       AND j.started_at < NOW(3) - INTERVAL (COALESCE(j.timeout_ms, (SELECT q.timeout_ms FROM job_queues q WHERE q.name = j.queue), ?) + ?) * 1000 MICROSECOND`;

export interface SelectOverdueParams {
  defaultTimeoutMs: number;
  graceMs: number;
  /** Start past this id (the previous batch's last); 0 for the first batch. */
  afterId: number;
  limit: number;
}

/**
 * Ids of running jobs past their timeout plus the grace, in id order past `afterId`.
 * Reads the running entries of jobs_claim and sorts those (forced, as jobsSelectHeldBy).
 * Params: default timeout ms, grace ms, after id, limit.
 */
export async function jobsSelectOverdue(db: Executor, { defaultTimeoutMs, graceMs, afterId, limit }: SelectOverdueParams): Promise<number[]> {
  const rows = await db.run(
    'jobsSelectOverdue',
    `SELECT j.id FROM jobs j FORCE INDEX (jobs_claim) WHERE ${OVERDUE} AND j.id > ? ORDER BY j.id LIMIT ?`,
    [defaultTimeoutMs, graceMs, afterId, limit],
  );
  return idsOf(rows);
}

/**
 * Cancels running jobs far past their timeout whose worker did not (a blocked event
 * loop, say): a backstop for the runner's own deadline. Batch by batch until a short
 * one: a read finds them; only then a transaction locks, cancels and counts them into
 * their parents. Params: default timeout ms, grace ms, rows per batch. Returns rows cancelled.
 */
export async function jobsCancelOverdue(db: Database, { defaultTimeoutMs, graceMs, batchSize = RESCUE_BATCH }: OverdueParams): Promise<number> {
  let cancelled = 0;
  for (let afterId = 0; ; ) {
    const ids = await jobsSelectOverdue(db, { defaultTimeoutMs, graceMs, afterId, limit: batchSize });
    const last = ids.at(-1);
    if (last === undefined) return cancelled;
    cancelled += await jobsCancelOverdueBatch(db, ids, defaultTimeoutMs, graceMs);
    if (ids.length < batchSize) return cancelled;
    afterId = last;
  }
}

/** One batch of jobsCancelOverdue: the rows of `ids` still overdue. Params: ids, default timeout ms, grace ms. */
async function jobsCancelOverdueBatch(db: Database, ids: readonly number[], defaultTimeoutMs: number, graceMs: number): Promise<number> {
  return inTransaction(db, 'jobsCancelOverdue', async (tx) => {
    const locked = (
      await tx.run('jobsLockOverdue', `SELECT j.id, j.parent_id, j.counted_as FROM jobs j WHERE j.id IN (?) AND ${OVERDUE} ORDER BY j.id FOR UPDATE`, [
        ids,
        defaultTimeoutMs,
        graceMs,
      ])
    ).map(lockedOf);
    if (locked.length === 0) return 0;
    const r = await tx.run<{ affectedRows: number }>(
      'jobsCancelOverdue',
      `UPDATE jobs j LEFT JOIN job_queues q ON q.name = j.queue
       SET j.status = 'cancelled', j.cancelled_at = NOW(3), j.finished_at = NOW(3),
           j.error = CONCAT('timed out after ', COALESCE(j.timeout_ms, q.timeout_ms, ?), ' ms (cancelled by the leader: worker ', j.worker, ' did not stop it)'),
           ${countedAsAssignment("'cancelled'", 'j')}
       WHERE j.id IN (?) AND j.status = 'running'`,
      [defaultTimeoutMs, locked.map((l) => l.id)],
    );
    await jobsCountIntoParents(tx, locked.map((l) => ({ ...l, status: 'cancelled' as const })));
    return r.affectedRows;
  });
}
