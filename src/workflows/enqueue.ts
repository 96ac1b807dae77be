import type { Database } from '../db/database.js';
import type { RunRef } from '../db/queries/jobs-run.js';
import { jobsInsert, rawSql, type InsertRow } from '../db/queries/jobs-insert.js';
import { jobsAddDeps, jobsLockOwnRun } from '../db/queries/workflows-children.js';
import { inTransaction } from '../db/transaction.js';
import { PermanentJobError } from '../errors.js';
import type { EnqueueJob, EnqueueOptions } from '../handlers/types.js';
import { MAX_PAYLOAD_BYTES } from '../limits.js';

/** Most jobs one ctx.enqueue call inserts (one statement; split bigger fan-outs over calls). */
export const MAX_ENQUEUE = 10_000;

const FIELDS = new Set([
  'type', 'queue', 'payload', 'priority', 'run_at', 'max_attempts', 'timeout_ms', 'concurrency_key', 'unique_key', 'paused',
  'status', 'parent_id', 'deps_total', 'on_child_failure', 'approval_required', 'wait_deadline',
]);

/** The running job a `wait` enqueue adds children to. */
export interface EnqueueParent {
  worker: string;
  run: RunRef;
}

/**
 * `ctx.enqueue`: validates the rows, then inserts them in one statement. With `wait`, in
 * one transaction: lock the parent's row (fenced on this run, no cancel requested), insert
 * the children under it, and raise its deps_total by their number — so a child that ends
 * at once is counted against a seal that already includes it, and a run that lost its row
 * adds nothing. Bad input throws a PermanentJobError naming the row and field.
 */
export async function enqueueJobs(db: Database, jobs: readonly EnqueueJob[], options: EnqueueOptions, parent: EnqueueParent): Promise<number[]> {
  if (!Array.isArray(jobs)) throw new PermanentJobError('ctx.enqueue: expected an array of jobs');
  if (jobs.length > MAX_ENQUEUE) throw new PermanentJobError(`ctx.enqueue: ${jobs.length} jobs in one call, more than ${MAX_ENQUEUE}`);
  const policy = options.onChildFailure ?? null;
  if (policy !== null && policy !== 'fail' && policy !== 'continue') {
    throw new PermanentJobError(`ctx.enqueue: onChildFailure must be 'fail' or 'continue' (got ${JSON.stringify(policy)})`);
  }
  const list: readonly EnqueueJob[] = jobs;
  const rows = list.map((job, i) => rowOf(job, i, options.wait ? parent.run.id : undefined));
  if (!options.wait) return jobsInsert(db, rows);
  return inTransaction(db, 'jobsEnqueueChildren', async (tx) => {
    if (!(await jobsLockOwnRun(tx, parent.worker, parent.run))) {
      throw new Error(`ctx.enqueue: job ${parent.run.id} is no longer this run's (cancelled, timed out or taken); no child was added`);
    }
    const ids = await jobsInsert(tx, rows);
    await jobsAddDeps(tx, { id: parent.run.id, n: rows.length, onChildFailure: policy });
    return ids;
  });
}

/** One job spec as an insert row: SQL defaults for what is left out, every field checked. */
function rowOf(job: EnqueueJob, i: number, waitingParent: number | undefined): InsertRow {
  const where = `ctx.enqueue: job ${i}`;
  if (typeof job !== 'object' || job === null) throw new PermanentJobError(`${where} must be an object`);
  const unknown = Object.keys(job).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw new PermanentJobError(`${where} has unknown field(s) ${unknown.join(', ')}; fields are the columns of jobs`);
  const j = job as unknown as Record<string, unknown>;
  const str = (name: string, max: number, nullable: boolean): string | null => {
    const v = j[name];
    if (v === undefined || (v === null && nullable)) return null;
    if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new PermanentJobError(`${where}: ${name} must be a string of 1 to ${max} characters`);
    return v;
  };
  const int = (name: string, min: number, nullable: boolean): number | null => {
    const v = j[name];
    if (v === undefined || (v === null && nullable)) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2_147_483_647) {
      throw new PermanentJobError(`${where}: ${name} must be a whole number from ${min} to 2147483647`);
    }
    return v;
  };
  const bool = (name: string): boolean => {
    const v = j[name];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw new PermanentJobError(`${where}: ${name} must be true or false`);
    return v;
  };
  const type = str('type', 128, false);
  if (type === null) throw new PermanentJobError(`${where}: type is required`);
  const payload = j.payload === undefined ? null : JSON.stringify(j.payload);
  if (payload !== null && Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) throw new PermanentJobError(`${where}: payload is larger than ${MAX_PAYLOAD_BYTES} bytes`);
  const status = j.status ?? 'pending';
  if (status !== 'pending' && status !== 'waiting') throw new PermanentJobError(`${where}: status must be 'pending' or 'waiting'`);
  const policy = j.on_child_failure ?? 'fail';
  if (policy !== 'fail' && policy !== 'continue') throw new PermanentJobError(`${where}: on_child_failure must be 'fail' or 'continue'`);
  const parentId = int('parent_id', 1, true);
  if (waitingParent !== undefined && parentId !== null && parentId !== waitingParent) {
    throw new PermanentJobError(`${where}: parent_id ${parentId} given with { wait: true }, which makes it a child of job ${waitingParent}`);
  }
  return {
    queue: str('queue', 64, false) ?? 'default',
    type,
    payload,
    priority: int('priority', -2_147_483_648, false) ?? 0,
    runAt: instant(j.run_at, `${where}: run_at`) ?? rawSql('NOW(3)'),
    maxAttempts: int('max_attempts', 1, false) ?? 3,
    timeoutMs: int('timeout_ms', 1, true),
    concurrencyKey: str('concurrency_key', 255, true),
    uniqueKey: str('unique_key', 255, true),
    paused: bool('paused'),
    status,
    parentId: waitingParent ?? parentId,
    depsTotal: int('deps_total', 0, true),
    onChildFailure: policy,
    approvalRequired: bool('approval_required'),
    waitDeadline: instant(j.wait_deadline, `${where}: wait_deadline`),
  };
}

/**
 * A Date becomes FROM_UNIXTIME(seconds), which the server reads in the session's time
 * zone like NOW(3); a string goes as it is (a DATETIME in the server's time zone).
 */
function instant(v: unknown, what: string): unknown {
  if (v === undefined || v === null) return null;
  if (v instanceof Date) {
    const ms = v.getTime();
    if (!Number.isFinite(ms) || ms < 0) throw new PermanentJobError(`${what} is not a valid date`);
    return rawSql(`FROM_UNIXTIME(${(ms / 1000).toFixed(3)})`);
  }
  if (typeof v === 'string' && v.length > 0 && v.length <= 32) return v;
  throw new PermanentJobError(`${what} must be a Date or a DATETIME string`);
}
