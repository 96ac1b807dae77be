/**
 * Cascades of cancel and pause down a workflow (DESIGN.md "Workflows"): each statement
 * pushes one level down and locks children only, never a parent and then its children
 * (the lock order of workflows-counting.ts); the children's own todo carries it further.
 */
import type { Executor } from '../database.js';
import { flag, idsOf, num } from './rows.js';
import { TODO } from './workflows-todo.js';

/**
 * Pushes a cancel request one level down: the children of `parents` that have not ended
 * and have none get cancel_requested_at (their own todo then carries it further). Locks
 * children only. Params: parents, limit. Returns rows changed.
 */
export async function jobsCascadeCancel(db: Executor, parents: readonly number[], limit: number): Promise<number> {
  if (parents.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsCascadeCancel',
    `UPDATE jobs SET cancel_requested_at = NOW(3)
     WHERE parent_id IN (?) AND status IN ('waiting', 'pending', 'queued', 'running') AND cancel_requested_at IS NULL
     LIMIT ?`,
    [parents, limit],
  );
  return r.affectedRows;
}

/** Records that the cancels of these rows reached their children. Params: ids. */
export async function jobsMarkCancelCascaded(db: Executor, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.run(
    'jobsMarkCancelCascaded',
    'UPDATE jobs SET cancel_cascaded_at = COALESCE(cancel_requested_at, NOW(3)) WHERE id IN (?) AND workflow_todo = ?',
    [ids, TODO.cascadeCancel],
  );
}

/** A row whose paused must reach its children. */
export interface PauseCascade {
  id: number;
  paused: boolean;
}

/** Rows whose paused differs from what their children were last given. Params: limit. */
export async function jobsSelectPauseCascades(db: Executor, limit: number): Promise<PauseCascade[]> {
  const rows = await db.run(
    'jobsSelectPauseCascades',
    'SELECT id, paused FROM jobs WHERE workflow_todo = ? ORDER BY id LIMIT ?',
    [TODO.cascadePause, limit],
  );
  return rows.map((r) => ({ id: num(r.id), paused: flag(r.paused) }));
}

export interface CascadePauseParams {
  parents: readonly number[];
  paused: boolean;
  limit: number;
}

/**
 * Sets paused on the children of `parents` that have not started (waiting, pending); they
 * carry it further themselves. Params: paused, parents, paused, limit. Returns rows changed.
 */
export async function jobsCascadePause(db: Executor, { parents, paused, limit }: CascadePauseParams): Promise<number> {
  if (parents.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsCascadePause',
    `UPDATE jobs SET paused = ?
     WHERE parent_id IN (?) AND status IN ('waiting', 'pending') AND paused <> ?
     LIMIT ?`,
    [paused, parents, paused, limit],
  );
  return r.affectedRows;
}

/**
 * Children of `parents` that have started but not ended (queued, running): their paused is
 * left alone, but the cascade passes through them to their own children. Params: parents, limit.
 */
export async function jobsSelectStartedChildren(db: Executor, parents: readonly number[], limit: number): Promise<number[]> {
  if (parents.length === 0) return [];
  const rows = await db.run(
    'jobsSelectStartedChildren',
    `SELECT id FROM jobs WHERE parent_id IN (?) AND status IN ('queued', 'running') LIMIT ?`,
    [parents, limit],
  );
  return idsOf(rows);
}

/** Records that these rows' paused reached their children, if it is still that value. Params: paused, ids. */
export async function jobsMarkPauseCascaded(db: Executor, ids: readonly number[], paused: boolean): Promise<void> {
  if (ids.length === 0) return;
  await db.run('jobsMarkPauseCascaded', 'UPDATE jobs SET pause_cascaded = paused WHERE id IN (?) AND paused = ?', [ids, paused]);
}
