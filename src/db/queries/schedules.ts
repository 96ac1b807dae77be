/**
 * The SQL of recurring schedules (table job_schedules), named table-then-verb like
 * every file of src/db/queries/. Instants of job_schedules are UTC: compared with UTC_TIMESTAMP(3),
 * never NOW(3), which follows the session's time zone.
 *
 * Affected rows: mysql2 connects with CLIENT_FOUND_ROWS, so an UPDATE reports rows
 * *matched*; without it MySQL reports rows *changed* (Oban #1250 read one as the other).
 * Every compare-and-set here changes each row it matches (next_run_at or computed_for
 * always moves), so both answers agree; test/integration/schedules-sql.test.ts pins it.
 */
import type { Executor } from '../database.js';
import { flag, idsOf, num, numOrNull, text, type Row } from './rows.js';

/**
 * Columns for a poll statement (the ready-jobs probe, or schedulesPeek): µs until the
 * earliest tick of an active schedule (NULL: none; ≤ 0: due), and whether a row was
 * added or edited and needs its next tick computed. Both read job_schedules_due alone
 * (the MIN is "Select tables optimized away"). No params.
 */
export const SCHEDULES_PEEK_COLUMNS = `
       (SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(3), MIN(s.next_run_at)) FROM job_schedules s
        WHERE s.needs_compute IS NULL AND s.paused = 0) AS schedule_due_in_us,
       EXISTS (SELECT 1 FROM job_schedules s WHERE s.needs_compute = 1) AS schedules_to_compute`;

/** Condition for the quiet heartbeat: no tick due and nothing to compute. No params. */
export const SCHEDULES_QUIET = `NOT EXISTS (SELECT 1 FROM job_schedules s
         WHERE s.needs_compute IS NULL AND s.paused = 0 AND s.next_run_at <= UTC_TIMESTAMP(3))
       AND NOT EXISTS (SELECT 1 FROM job_schedules s WHERE s.needs_compute = 1)`;

/** What a poll saw of the schedules. */
export interface SchedulePeek {
  /** ms until the earliest tick (≤ 0: due now); null: no active schedule has one. */
  dueInMs: number | null;
  /** Some row is new or edited: its next tick must be computed. */
  toCompute: boolean;
}

/** Reads SCHEDULES_PEEK_COLUMNS out of a result row. */
export function schedulePeekOf(row: Row): SchedulePeek {
  const us = numOrNull(row.schedule_due_in_us);
  return { dueInMs: us === null ? null : us / 1000, toCompute: flag(row.schedules_to_compute) };
}

/** The peek on its own, when no probe has run lately. No params. */
export async function schedulesPeek(db: Executor): Promise<SchedulePeek> {
  const rows = await db.run('schedulesPeek', `SELECT ${SCHEDULES_PEEK_COLUMNS}`);
  return schedulePeekOf(rows[0] ?? {});
}

/** A row whose next tick must be (re)computed. */
export interface ScheduleSpecRow {
  id: number;
  name: string;
  cron: string;
  timezone: string;
  paused: boolean;
  specHash: string;
  /** The server's UTC_TIMESTAMP(3) when read. */
  now: string;
}

/** New or edited rows (needs_compute = 1). Params: limit. */
export async function schedulesSelectToCompute(db: Executor, limit: number): Promise<ScheduleSpecRow[]> {
  const rows = await db.run(
    'schedulesSelectToCompute',
    'SELECT id, name, cron, timezone, paused, spec_hash, UTC_TIMESTAMP(3) AS now FROM job_schedules WHERE needs_compute = 1 LIMIT ?',
    [limit],
  );
  return rows.map(specRowOf);
}

/** What names a schedule and decides its ticks, in every row read here. */
function scheduleOf(r: Row): { id: number; name: string; cron: string; timezone: string } {
  return { id: num(r.id), name: text(r.name), cron: text(r.cron), timezone: text(r.timezone) };
}

function specRowOf(r: Row): ScheduleSpecRow {
  return {
    ...scheduleOf(r),
    paused: flag(r.paused),
    specHash: text(r.spec_hash),
    now: text(r.now),
  };
}

/**
 * Stores the next tick computed from the spec with hash `specHash` (or why there is
 * none), only if the row still has that spec and still waits for it: an edit made
 * meanwhile wins, and a second replica computing the same row changes nothing.
 * Params: next (UTC text or null), error, id, spec hash. Returns true if stored.
 */
export async function schedulesSetComputed(db: Executor, id: number, specHash: string, next: string | null, error: string | null): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>(
    'schedulesSetComputed',
    `UPDATE job_schedules SET next_run_at = ?, last_error = ?, computed_for = spec_hash
     WHERE id = ? AND spec_hash = ? AND needs_compute = 1`,
    [next, error, id, specHash],
  );
  return r.affectedRows === 1;
}

/** A due schedule, locked by this transaction. */
export interface DueSchedule {
  id: number;
  name: string;
  cron: string;
  timezone: string;
  overlap: 'allow' | 'skip';
  catchUp: 'latest' | 'none' | 'all';
  /** next_run_at exactly as stored (the compare-and-set's expected value). */
  nextRunAt: string;
  lastJobId: number | null;
  /** The server's UTC_TIMESTAMP(3) when the row was locked. */
  now: string;
}

/**
 * Locks due schedules, oldest tick first, skipping rows another replica holds: each tick
 * is evaluated by one transaction at a time, whichever replica and whoever leads.
 * Served by job_schedules_due. Params: limit.
 */
export async function schedulesLockDue(tx: Executor, limit: number): Promise<DueSchedule[]> {
  const rows = await tx.run(
    'schedulesLockDue',
    `SELECT id, name, cron, timezone, overlap, catch_up, next_run_at, last_job_id, UTC_TIMESTAMP(3) AS now
     FROM job_schedules
     WHERE needs_compute IS NULL AND paused = 0 AND next_run_at <= UTC_TIMESTAMP(3)
     ORDER BY next_run_at
     LIMIT ?
     FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows.map(dueScheduleOf);
}

function dueScheduleOf(r: Row): DueSchedule {
  return {
    ...scheduleOf(r),
    overlap: r.overlap === 'skip' ? 'skip' : 'allow',
    catchUp: r.catch_up === 'all' || r.catch_up === 'none' ? r.catch_up : 'latest',
    nextRunAt: text(r.next_run_at),
    lastJobId: numOrNull(r.last_job_id),
    now: text(r.now),
  };
}

/**
 * Of these jobs, those that have not ended. A job that is gone (pruned by retention,
 * deleted by hand) has ended: overlap 'skip' never depends on finished rows surviving.
 * Primary-key lookups, not locking. Params: ids.
 */
export async function jobsSelectUnended(tx: Executor, ids: readonly number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const rows = await tx.run(
    'jobsSelectUnended',
    `SELECT id FROM jobs WHERE id IN (?) AND status NOT IN ('done', 'failed', 'cancelled')`,
    [ids],
  );
  return new Set(idsOf(rows));
}

/**
 * Inserts one job per tick from the schedule's template (copied in SQL: the payload
 * never round-trips through the daemon). The unique (schedule_id, scheduled_for) is the
 * second guard: a tick that already has a job is skipped (IGNORE), not an error every
 * poll (Solid Queue #638). The columns are copied between identical types and checks,
 * so the duplicate key is the only error IGNORE can meet. Params: ticks (UTC text), id.
 * Returns jobs inserted.
 */
export async function jobsInsertScheduled(tx: Executor, scheduleId: number, ticks: readonly string[]): Promise<number> {
  if (ticks.length === 0) return 0;
  const r = await tx.run<{ affectedRows: number }>(
    'jobsInsertScheduled',
    `INSERT IGNORE INTO jobs (queue, type, payload, priority, max_attempts, timeout_ms, concurrency_key, schedule_id, scheduled_for)
     SELECT s.queue, s.type, s.payload, s.priority, s.max_attempts, s.timeout_ms, s.concurrency_key, s.id, t.tick
     FROM job_schedules s
     JOIN JSON_TABLE(?, '$[*]' COLUMNS (tick DATETIME(3) PATH '$')) t
     WHERE s.id = ?`,
    [JSON.stringify(ticks), scheduleId],
  );
  return r.affectedRows;
}

export interface ScheduleAdvance {
  id: number;
  /** next_run_at as locked: the compare-and-set's expected value. */
  from: string;
  /** The new high-water mark (UTC text), or null: no next tick (see error). */
  next: string | null;
  /** The newest tick made now, if any: becomes last_run_at, and its job last_job_id. */
  lastTick: string | null;
  /** last_error to store (null clears it). */
  error: string | null;
}

/**
 * Moves the high-water mark forward by compare-and-set on the value locked. 0 rows means
 * another transaction moved it (impossible while the row lock holds): the caller rolls
 * back, so the jobs inserted with it vanish too. Params: next, tick, id, tick, error, id, from.
 */
export async function schedulesAdvance(tx: Executor, a: ScheduleAdvance): Promise<number> {
  const r = await tx.run<{ affectedRows: number }>(
    'schedulesAdvance',
    `UPDATE job_schedules
     SET next_run_at = ?,
         last_run_at = COALESCE(?, last_run_at),
         last_job_id = COALESCE((SELECT j.id FROM jobs j WHERE j.schedule_id = ? AND j.scheduled_for = ?), last_job_id),
         last_error = ?
     WHERE id = ? AND next_run_at = ? AND needs_compute IS NULL`,
    [a.next, a.lastTick, a.id, a.lastTick, a.error, a.id, a.from],
  );
  return r.affectedRows;
}
