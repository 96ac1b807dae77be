/** Retention: finished jobs older than SLUICE_RETENTION_HOURS, found and deleted in batches. */
import type { Executor } from '../database.js';
import { num, text, type Row } from './rows.js';

/** An expired row, and where the next batch starts: jobs_finished order is (finished_at, id). */
export interface ExpiredRow {
  id: number;
  /** finished_at as the server wrote it. */
  finishedAt: string;
}

export interface SelectExpiredParams {
  hours: number;
  limit: number;
  /** Start past this row (the previous batch's last); omitted for the first batch. */
  after?: ExpiredRow | undefined;
}

/**
 * Finished jobs older than the retention, oldest first, past `after` — except children
 * whose parent has not ended: the parent may still read their results (ctx.children()).
 * A parent that is gone has ended. Served by jobs_finished (finished_at, then the primary
 * key), so the key of a batch is (finished_at, id): a batch starts where the last one
 * stopped, not at the head of the index, where the entries of rows just deleted stay
 * (delete-marked) until InnoDB purges them, and where rows the delete refused stay.
 * Params: hours, cursor, limit.
 */
export async function jobsSelectExpired(db: Executor, { hours, limit, after }: SelectExpiredParams): Promise<ExpiredRow[]> {
  const cursor = after
    ? { sql: 'AND (finished_at > ? OR (finished_at = ? AND id > ?))', params: [after.finishedAt, after.finishedAt, after.id] }
    : { sql: '', params: [] };
  const rows = await db.run(
    'jobsSelectExpired',
    `SELECT id, finished_at FROM jobs WHERE finished_at < NOW(3) - INTERVAL ? * 3600000000 MICROSECOND
       ${cursor.sql}
       AND (parent_id IS NULL OR NOT EXISTS (
         SELECT 1 FROM jobs p WHERE p.id = jobs.parent_id AND p.status NOT IN ('done', 'failed', 'cancelled')))
     ORDER BY finished_at, id LIMIT ?`,
    [hours, ...cursor.params, limit],
  );
  return rows.map(expiredRowOf);
}

function expiredRowOf(r: Row): ExpiredRow {
  return { id: num(r.id), finishedAt: text(r.finished_at) };
}

/**
 * Deletes finished jobs by primary key only (range deletes deadlock under replicas), and
 * again never a child whose parent has not ended (its parent may have been retried by
 * hand since the ids were chosen). Params: ids.
 */
export async function jobsDelete(db: Executor, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsDelete',
    `DELETE c FROM jobs c LEFT JOIN jobs p ON p.id = c.parent_id
     WHERE c.id IN (?) AND c.status IN ('done', 'failed', 'cancelled')
       AND (p.id IS NULL OR p.status IN ('done', 'failed', 'cancelled'))`,
    [ids],
  );
  return r.affectedRows;
}
