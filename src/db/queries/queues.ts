/** job_queues: registration of queues first seen in jobs, and the lock behind cluster-wide caps. */
import type { Executor } from '../database.js';
import { num, text } from './rows.js';

/** Registers queues first seen in jobs. Params: names. */
export async function queuesRegister(db: Executor, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await db.run('queuesRegister', 'INSERT IGNORE INTO job_queues (name) VALUES ?', [names.map((n) => [n])]);
}

/**
 * Locks the capped queues' rows for the claim transaction, so two replicas cannot both
 * see room under a cluster-wide concurrency cap, then counts their active jobs.
 * Params: queue names.
 */
export async function queuesLockActive(tx: Executor, names: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(names.map((n) => [n, 0]));
  if (names.length === 0) return out;
  await tx.run('queuesLock', 'SELECT name FROM job_queues WHERE name IN (?) FOR UPDATE', [names]);
  // Grouped in index order (status, queue): no temporary table; summed here.
  const rows = await tx.run(
    'jobsCountActive',
    `SELECT queue, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running') AND queue IN (?) GROUP BY status, queue`,
    [names],
  );
  for (const r of rows) {
    const queue = text(r.queue);
    out.set(queue, (out.get(queue) ?? 0) + num(r.n));
  }
  return out;
}
