/**
 * The dashboard's actions (SLUICE_DASHBOARD_ACTIONS=true): each is the plain UPDATE the
 * SQL cookbook (README, docs/sql-cookbook.md) gives users for the same control, so the daemon does the rest exactly as if a
 * person had typed it (cancel and pause cascade to children, approval releases a parent).
 * Every statement names its rows by primary key or by a LIMITed range of one (status,
 * queue) of jobs_claim.
 */
import type { Executor } from '../database.js';

export type JobAction = 'cancel' | 'retry' | 'pause' | 'resume' | 'approve';
export const JOB_ACTIONS: readonly JobAction[] = ['cancel', 'retry', 'pause', 'resume', 'approve'];

/** SET and extra WHERE of each action; the statements of the SQL cookbook and docs/workflows.md (approve). */
const ACTION_SQL: Record<JobAction, { set: string; where: string }> = {
  cancel: { set: 'cancel_requested_at = NOW(3)', where: "status NOT IN ('done', 'failed', 'cancelled') AND cancel_requested_at IS NULL" },
  retry: {
    set: "status = 'pending', attempts = 0, run_at = NOW(3), error = NULL, finished_at = NULL, cancelled_at = NULL, cancel_requested_at = NULL",
    where: "status IN ('failed', 'cancelled')",
  },
  pause: { set: 'paused = TRUE', where: "paused = FALSE AND status NOT IN ('done', 'failed', 'cancelled')" },
  resume: { set: 'paused = FALSE', where: 'paused = TRUE' },
  approve: { set: 'approved_at = NOW(3), approved_by = ?', where: "approval_required = TRUE AND approved_at IS NULL AND status = 'waiting'" },
};

/** Rows changed by one chunk. */
interface Affected {
  affectedRows: number;
}

/** The action on the jobs `ids` (at most a chunk). Params: [approvedBy], ids. */
export async function jobsActOnIds(db: Executor, action: JobAction, ids: readonly number[], by: string): Promise<number> {
  if (ids.length === 0) return 0;
  const { set, where } = ACTION_SQL[action];
  const params: unknown[] = action === 'approve' ? [by, ids] : [ids];
  const res = await db.run<Affected>(`jobsAct${cap(action)}`, `UPDATE jobs SET ${set} WHERE id IN (?) AND ${where}`, params);
  return res.affectedRows;
}

/**
 * One chunk of the action on the jobs of (status, queue): at most `limit` rows of its
 * range of jobs_claim, in the index's order (no sort). Each changed row leaves the
 * chunk's WHERE, so repeating it moves on. Params: [approvedBy], status, queue, limit.
 */
export async function jobsActOnRange(db: Executor, action: JobAction, status: string, queue: string, limit: number, by: string): Promise<number> {
  const { set, where } = ACTION_SQL[action];
  const params: unknown[] = [...(action === 'approve' ? [by] : []), status, queue, limit];
  const res = await db.run<Affected>(
    `jobsActRange${cap(action)}`,
    `UPDATE jobs FORCE INDEX (jobs_claim) SET ${set} WHERE status = ? AND queue = ? AND ${where}
     ORDER BY claim_lane, claim_priority, run_at, id LIMIT ?`,
    params,
  );
  return res.affectedRows;
}

/** Pauses or resumes a queue, creating its job_queues row if needed. Params: name, paused. */
export async function queuesSetPaused(db: Executor, name: string, paused: boolean): Promise<void> {
  await db.run('queuesSetPaused', 'INSERT INTO job_queues (name, paused) VALUES (?, ?) ON DUPLICATE KEY UPDATE paused = VALUES(paused)', [name, paused]);
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
