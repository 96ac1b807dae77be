/**
 * Leases of claims held open (see consumers/locked-batch.ts). A held claim's rows stay
 * `pending` with no worker until it closes; its lease row, committed before any of them
 * starts, is what says they are taken. A lease outlives its claim only when the claim
 * rolled back (a crash, a lost connection): the rows are pending again and may have run.
 * Every claim skips leased rows, and resolving a lease of a replica that is gone makes them
 * reclaimed (`worker` names the replica), so the next run records its attempt before its
 * handler starts, as after any crash: a job that kills its process uses attempts up.
 */
import type { Executor } from '../database.js';

/** Ids of leased rows, for a claim's `id NOT IN (…)`: one small table, read once per claim. */
export const LEASED_IDS = `SELECT l.id FROM job_leases, JSON_TABLE(job_leases.ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) l`;

/** Params: worker, batch, ids. */
export async function leaseWrite(db: Executor, lease: { worker: string; batch: number; ids: readonly number[] }): Promise<void> {
  await db.run('leaseWrite', 'INSERT INTO job_leases (worker, batch, ids) VALUES (?, ?, ?)', [lease.worker, lease.batch, JSON.stringify(lease.ids)]);
}

/** The claim closed (its rows are written): its lease goes. Params: worker, batch. */
export async function leaseDelete(db: Executor, worker: string, batch: number): Promise<void> {
  await db.run('leaseDelete', 'DELETE FROM job_leases WHERE worker = ? AND batch = ?', [worker, batch]);
}

/**
 * Leases this replica left behind: a claim that failed after writing its lease, a delete
 * lost in an outage. Those of open claims stay, and young ones, which may belong to a
 * claim being made. Params: worker, open batches.
 */
export async function leasesSweepOwn(db: Executor, worker: string, openBatches: readonly number[]): Promise<void> {
  await db.run('leasesSweepOwn', 'DELETE FROM job_leases WHERE worker = ? AND batch NOT IN (?) AND created_at < NOW(3) - INTERVAL 5 SECOND', [
    worker,
    openBatches.length > 0 ? openBatches : [0],
  ]);
}

/** Resolves every lease of `workers` (gone, or this replica at start-up). Params: workers. Returns rows reclaimed. */
export async function leasesResolveOf(db: Executor, workers: readonly string[]): Promise<number> {
  if (workers.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'leasesResolve',
    `UPDATE jobs j
     JOIN (SELECT l.worker, t.id FROM job_leases l, JSON_TABLE(l.ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) t
           WHERE l.worker IN (?)) x ON j.id = x.id
     SET j.worker = x.worker
     WHERE j.status = 'pending' AND j.worker IS NULL`,
    [workers],
  );
  await db.run('leasesDelete', 'DELETE FROM job_leases WHERE worker IN (?)', [workers]);
  return r.affectedRows;
}
