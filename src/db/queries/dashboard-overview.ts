/**
 * What the dashboard's overview, workers and schedules pages read: the leader's snapshot
 * (dashboard-snapshot.ts), queue controls, live replicas, schedules and the server's
 * clock. Each is a few rows, a bounded range of a small table; run through the
 * dashboard's own pool, whose every statement carries a server-side time limit
 * (src/dashboard/dashboard-db.ts).
 */
import type { Executor } from '../database.js';
import type { CountRow } from './dashboard-snapshot.js';
import { flag, num, numOrNull, text, textOrNull, type Row } from './rows.js';

export interface SnapshotCount extends CountRow {
  computedAt: string;
}

/** The whole snapshot (a few rows). No params. */
export async function countsSelect(db: Executor): Promise<SnapshotCount[]> {
  const rows = await db.run('countsSelect', 'SELECT queue, status, n, capped, computed_at FROM job_counts ORDER BY queue, status');
  return rows.map((r) => ({ queue: text(r.queue), status: text(r.status), n: num(r.n), capped: flag(r.capped), computedAt: text(r.computed_at) }));
}

export interface Mark {
  name: string;
  at: string;
  worker: string | null;
}

/** The leader's marks: when the snapshot was computed and by whom. No params. */
export async function marksSelect(db: Executor): Promise<Mark[]> {
  const rows = await db.run('marksSelect', 'SELECT name, at, worker FROM job_dashboard_marks ORDER BY name');
  return rows.map((r) => ({ name: text(r.name), at: text(r.at), worker: textOrNull(r.worker) }));
}

export interface ThroughputRow {
  minute: string;
  queue: string;
  status: string;
  n: number;
}

/** Minutes of the last `minutes` minutes (≤ minutes × queues × 3 rows, a PK range). Params: minutes. */
export async function throughputSelectRecent(db: Executor, minutes: number): Promise<ThroughputRow[]> {
  const rows = await db.run(
    'throughputSelectRecent',
    `SELECT minute, queue, status, n FROM job_throughput
     WHERE minute >= DATE_FORMAT(NOW() - INTERVAL ? MINUTE, '%Y-%m-%d %H:%i:00') ORDER BY minute`,
    [minutes],
  );
  return rows.map((r) => ({ minute: text(r.minute), queue: text(r.queue), status: text(r.status), n: num(r.n) }));
}

/** The server's clock, to the minute and to the ms. No params. */
export async function serverNow(db: Executor): Promise<{ now: string; utcNow: string }> {
  const rows = await db.run('serverNow', 'SELECT NOW(3) AS now, UTC_TIMESTAMP(3) AS utc_now');
  return { now: text(rows[0]?.now ?? ''), utcNow: text(rows[0]?.utc_now ?? '') };
}

export interface QueueControlRow {
  name: string;
  paused: number;
  rate_per_sec: number | null;
  concurrency: number | null;
  timeout_ms: number | null;
}

/** Queue controls, at most `limit` rows. Params: limit. */
export async function queuesSelect(db: Executor, limit: number): Promise<QueueControlRow[]> {
  const rows = await db.run('queuesSelect', 'SELECT name, paused, rate_per_sec, concurrency, timeout_ms FROM job_queues ORDER BY name LIMIT ?', [limit]);
  return rows.map((r) => ({
    name: text(r.name),
    paused: num(r.paused),
    rate_per_sec: numOrNull(r.rate_per_sec),
    concurrency: numOrNull(r.concurrency),
    timeout_ms: numOrNull(r.timeout_ms),
  }));
}

export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  queues: string;
  started_at: string;
  heartbeat_at: string;
  /** ms since the last heartbeat, by the server's clock. */
  age_ms: number;
}

/** Live replicas, at most `limit`. Params: limit. */
export async function workersSelect(db: Executor, limit: number): Promise<WorkerRow[]> {
  const rows = await db.run(
    'workersSelect',
    `SELECT id, host, pid, version, queues, started_at, heartbeat_at,
            TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(3)) / 1000 AS age_ms
     FROM job_workers ORDER BY id LIMIT ?`,
    [limit],
  );
  return rows.map((r) => ({
    id: text(r.id),
    host: text(r.host),
    pid: num(r.pid),
    version: text(r.version),
    queues: text(r.queues),
    started_at: text(r.started_at),
    heartbeat_at: text(r.heartbeat_at),
    age_ms: Math.round(num(r.age_ms)),
  }));
}

export interface ScheduleRow {
  id: number;
  name: string;
  cron: string;
  timezone: string;
  queue: string;
  type: string;
  paused: number;
  overlap: string;
  catch_up: string;
  next_run_at: string | null;
  last_run_at: string | null;
  last_job_id: number | null;
  last_error: string | null;
  /** ms the next tick is overdue (UTC clock); ≤ 0: not due yet. */
  late_ms: number | null;
}

/** Schedules by name, at most `limit`. Params: limit. */
export async function schedulesSelect(db: Executor, limit: number): Promise<ScheduleRow[]> {
  const rows = await db.run(
    'schedulesSelectDashboard',
    `SELECT id, name, cron, timezone, queue, type, paused, overlap, catch_up, next_run_at, last_run_at,
            last_job_id, LEFT(last_error, 500) AS last_error,
            TIMESTAMPDIFF(MICROSECOND, next_run_at, UTC_TIMESTAMP(3)) / 1000 AS late_ms
     FROM job_schedules ORDER BY name LIMIT ?`,
    [limit],
  );
  return rows.map(scheduleRowOf);
}

function scheduleRowOf(r: Row): ScheduleRow {
  return {
    id: num(r.id),
    name: text(r.name),
    cron: text(r.cron),
    timezone: text(r.timezone),
    queue: text(r.queue),
    type: text(r.type),
    paused: num(r.paused),
    overlap: text(r.overlap),
    catch_up: text(r.catch_up),
    next_run_at: textOrNull(r.next_run_at),
    last_run_at: textOrNull(r.last_run_at),
    last_job_id: numOrNull(r.last_job_id),
    last_error: textOrNull(r.last_error),
    late_ms: r.late_ms == null ? null : Math.round(num(r.late_ms)),
  };
}
