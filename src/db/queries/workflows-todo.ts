/**
 * What the leader must do for workflows (DESIGN.md "Workflows"): the values of
 * workflow_todo (migration 005) and the looks that find rows waiting for the leader —
 * a todo, or a waiting job's passed deadline. Named table-then-verb like every file of
 * src/db/queries/.
 */
import type { Executor } from '../database.js';
import { flag, idsOf } from './rows.js';

/** Values of workflow_todo (migration 005): what the leader must do with a row. */
export const TODO = {
  release: 1,
  failFast: 2,
  cancelWaiting: 3,
  cancelPendingChild: 4,
  cascadeCancel: 5,
  cascadePause: 6,
} as const;

export type WorkflowTodo = keyof typeof TODO;

/**
 * EXISTS, for the leader's probe: a workflow row waits for the leader (release, fail fast,
 * a cancel, a cascade) or a waiting job's deadline has passed. Two index lookups
 * (jobs_workflow_todo, jobs_wait_expiry); an idle probe reads no row. No params.
 */
export const WORKFLOWS_TODO_EXIST = `(EXISTS (SELECT 1 FROM jobs wf WHERE wf.workflow_todo IS NOT NULL)
         OR EXISTS (SELECT 1 FROM jobs wf WHERE wf.wait_expiry <= NOW(3)))`;

/** The leader's look on its own, when no probe has run lately. No params. */
export async function workflowsPeek(db: Executor): Promise<boolean> {
  const rows = await db.run('workflowsPeek', `SELECT ${WORKFLOWS_TODO_EXIST} AS todo`);
  return flag(rows[0]?.todo);
}

/** Ids of rows with this todo, in id order. Served by jobs_workflow_todo. Params: todo, limit. */
export async function jobsSelectTodo(db: Executor, todo: WorkflowTodo, limit: number): Promise<number[]> {
  const rows = await db.run('jobsSelectTodo', 'SELECT id FROM jobs WHERE workflow_todo = ? ORDER BY id LIMIT ?', [TODO[todo], limit]);
  return idsOf(rows);
}

/** Ids of waiting jobs whose wait_deadline has passed. Served by jobs_wait_expiry. Params: limit. */
export async function jobsSelectWaitExpired(db: Executor, limit: number): Promise<number[]> {
  const rows = await db.run('jobsSelectWaitExpired', 'SELECT id FROM jobs WHERE wait_expiry <= NOW(3) ORDER BY wait_expiry LIMIT ?', [limit]);
  return idsOf(rows);
}
