/**
 * The leader's reconciler of parents' counters (DESIGN.md "Workflows"): sealed waiting
 * parents that nothing counted into for a while are recounted from their children's rows,
 * and drifted counters fixed by compare-and-set.
 */
import type { Executor } from '../database.js';
import { num, type Row } from './rows.js';

/** A waiting parent that may be stuck: sealed, not complete, nothing counted for a while. */
export interface StaleParent {
  id: number;
  depsDone: number;
  depsFailed: number;
}

export interface StaleParentsParams {
  /** Unchanged for at least this long. */
  idleMs: number;
  /** Start past this id (the previous batch's last); 0 for the first batch. */
  afterId: number;
  limit: number;
}

/**
 * Waiting, sealed parents that still wait for children and whose row has not changed for
 * `idleMs` (no child counted), after `afterId` in id order. Reads the waiting range of
 * jobs_claim. Params: idle ms, after id, limit.
 */
export async function jobsSelectStaleParents(db: Executor, { idleMs, afterId, limit }: StaleParentsParams): Promise<StaleParent[]> {
  const rows = await db.run(
    'jobsSelectStaleParents',
    `SELECT id, deps_done, deps_failed FROM jobs
     WHERE status = 'waiting' AND deps_total IS NOT NULL AND deps_done + deps_failed < deps_total
       AND updated_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND AND id > ?
     ORDER BY id LIMIT ?`,
    [idleMs, afterId, limit],
  );
  return rows.map(staleParentOf);
}

function staleParentOf(r: Row): StaleParent {
  return { id: num(r.id), depsDone: num(r.deps_done), depsFailed: num(r.deps_failed) };
}

/** A parent's ended children as its counters should hold them. */
export interface ChildCounts {
  done: number;
  failed: number;
}

/** The ended children of a parent, counted from the rows (one range of jobs_parent). Params: parent. */
export async function jobsCountEndedChildren(db: Executor, parentId: number): Promise<ChildCounts> {
  const rows = await db.run(
    'jobsCountEndedChildren',
    `SELECT SUM(status = 'done') AS done, SUM(status IN ('failed', 'cancelled')) AS failed FROM jobs WHERE parent_id = ?`,
    [parentId],
  );
  return { done: num(rows[0]?.done ?? 0), failed: num(rows[0]?.failed ?? 0) };
}

/**
 * Rewrites a parent's counters from a recount, by compare-and-set on the values read
 * before the recount: a child counted meanwhile changed them, and the fix is skipped (the
 * next pass recounts). Params: done, failed, id, old done, old failed. True if fixed.
 */
export async function jobsFixCounters(db: Executor, p: StaleParent, recount: ChildCounts): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>(
    'jobsFixCounters',
    `UPDATE jobs SET deps_done = ?, deps_failed = ?
     WHERE id = ? AND status = 'waiting' AND deps_done = ? AND deps_failed = ?`,
    [recount.done, recount.failed, p.id, p.depsDone, p.depsFailed],
  );
  return r.affectedRows === 1;
}

/**
 * Marks the children of a reconciled parent as counted the way their rows say, so a later
 * end of one of them moves its count instead of adding to it. Params: parent.
 */
export async function jobsMarkChildrenCounted(db: Executor, parentId: number): Promise<void> {
  await db.run(
    'jobsMarkChildrenCounted',
    `UPDATE jobs SET counted_as = CASE WHEN status = 'done' THEN 'done' WHEN status IN ('failed', 'cancelled') THEN 'failed' END
     WHERE parent_id = ?`,
    [parentId],
  );
}
