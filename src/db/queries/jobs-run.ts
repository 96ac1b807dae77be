/**
 * A run's own writes between its claim and its outcome: `running` (the attempt counts
 * from here) and progress. Each is fenced on the run: (id, attempts, worker, status).
 */
import type { Executor } from '../database.js';
import { idsOf } from './rows.js';

/** A run's identity: the fence of every write it makes. */
export interface RunRef {
  id: number;
  /** attempts before the run (as claimed). */
  attempts: number;
}

/**
 * Marks claimed jobs running (attempts + 1). Params: worker, (id, attempts) pairs.
 * Returns how many rows moved; fewer than asked means some were cancelled or taken.
 */
export async function jobsMarkRunning(db: Executor, worker: string, runs: readonly RunRef[]): Promise<number> {
  const r = await db.run<{ affectedRows: number }>(
    'jobsMarkRunning',
    `UPDATE jobs SET status = 'running', started_at = NOW(3), attempts = attempts + 1, progress = NULL, spare_bytes = LEFT(spare_bytes, 16)
     WHERE id IN (?) AND (id, attempts) IN (?) AND worker = ? AND status = 'queued'`,
    [runs.map((r) => r.id), runs.map((r) => [r.id, r.attempts]), worker],
  );
  return r.affectedRows;
}

/** Which of these runs this worker now holds as running. Params: worker, runs. */
export async function jobsRunningOf(db: Executor, worker: string, runs: readonly RunRef[]): Promise<Set<number>> {
  const rows = await db.run(
    'jobsRunningOf',
    `SELECT id FROM jobs WHERE id IN (?) AND (id, attempts) IN (?) AND worker = ? AND status = 'running'`,
    [runs.map((r) => r.id), runs.map((r) => [r.id, r.attempts + 1]), worker],
  );
  return new Set(idsOf(rows));
}

/** Stores a run's progress (its `running` write may not have landed yet). Params: pct, run, worker. */
export async function jobsSetProgress(db: Executor, worker: string, run: RunRef, pct: number): Promise<void> {
  await db.run(
    'jobsSetProgress',
    `UPDATE jobs SET progress = ?
     WHERE id = ? AND worker = ?
       AND ((status = 'running' AND attempts = ?) OR (status = 'queued' AND attempts = ?))`,
    [pct, run.id, worker, run.attempts + 1, run.attempts],
  );
}
