/**
 * Jobs inserted by sluice itself (ctx.enqueue), in one statement as a user's INSERT
 * would, with their ids read back.
 */
import type { Executor } from '../database.js';
import { num } from './rows.js';

/** A row for jobsInsert: every column given (defaults filled in by the caller). */
export interface InsertRow {
  queue: string;
  type: string;
  /** JSON text or null. */
  payload: string | null;
  priority: number;
  /** SQL for run_at: a DATETIME string, or raw FROM_UNIXTIME(…) / NOW(3) (see rawSql). */
  runAt: unknown;
  maxAttempts: number;
  timeoutMs: number | null;
  concurrencyKey: string | null;
  uniqueKey: string | null;
  paused: boolean;
  status: 'pending' | 'waiting';
  parentId: number | null;
  depsTotal: number | null;
  onChildFailure: 'fail' | 'continue';
  approvalRequired: boolean;
  /** As runAt, or null. */
  waitDeadline: unknown;
}

/** A value mysql2 puts into the statement as SQL, not as a quoted literal (trusted text only). */
export function rawSql(sql: string): { toSqlString(): string } {
  return { toSqlString: () => sql };
}

/**
 * Inserts jobs in one statement, as a user's INSERT would. Returns their ids: one
 * multi-row INSERT of known size takes consecutive auto-increment values (every InnoDB
 * lock mode), `auto_increment_increment` apart. Params: rows.
 */
export async function jobsInsert(db: Executor, rows: readonly InsertRow[]): Promise<number[]> {
  if (rows.length === 0) return [];
  const values = rows.map((r) => [
    r.queue, r.type, r.payload, r.priority, r.runAt, r.maxAttempts, r.timeoutMs, r.concurrencyKey, r.uniqueKey, r.paused,
    r.status, r.parentId, r.depsTotal, r.onChildFailure, r.approvalRequired, r.waitDeadline,
  ]);
  const r = await db.run<{ insertId: number }>(
    'jobsInsert',
    `INSERT INTO jobs (queue, type, payload, priority, run_at, max_attempts, timeout_ms, concurrency_key, unique_key, paused,
                       status, parent_id, deps_total, on_child_failure, approval_required, wait_deadline)
     VALUES ?`,
    [values],
  );
  const step = await autoIncrementStep(db);
  return rows.map((_, i) => Number(r.insertId) + i * step);
}

let incrementStep: number | undefined;

/** @@auto_increment_increment (1 unless a multi-primary setup spreads ids), read once. */
async function autoIncrementStep(db: Executor): Promise<number> {
  if (incrementStep === undefined) {
    const rows = await db.run('jobsIncrementStep', 'SELECT @@auto_increment_increment AS step');
    incrementStep = Math.max(1, num(rows[0]?.step ?? 1));
  }
  return incrementStep;
}
