/**
 * The poll's question, "is there anything to do?", asked in one statement two ways: the
 * full probe (what is there, queue by queue), and the idle replica's heartbeat that is
 * written only if the answer is "nothing". Both are built from the same fragments, so
 * they cannot disagree about what counts as work.
 */
import type { Executor } from '../database.js';
import { KEY_LINES_OPEN_EXISTS, SCHEDULED_DUE, SCHEDULED_IN_US, STARTABLE_EXISTS } from './claim-lanes.js';
import { flag, isRow, jsonList, numOrNull, text, type Row } from './rows.js';
import { SCHEDULES_PEEK_COLUMNS, SCHEDULES_QUIET, schedulePeekOf, type SchedulePeek } from './schedules.js';
import { WORKFLOWS_TODO_EXIST } from './workflows-todo.js';

export interface QueueRow {
  name: string;
  paused: boolean;
  ratePerSec: number | null;
  concurrency: number | null;
  timeoutMs: number | null;
  /** A pending job of this queue could start now (lane 0, due, key not held). */
  ready: boolean;
  /** ms until this queue's earliest scheduled job is due (≤ 0: due, to promote); null: none. */
  scheduledInMs?: number | null;
}

export interface Probe {
  queues: QueueRow[];
  /** Queues with pending jobs that have no job_queues row yet. */
  newQueues: string[];
  /** Queue lists of live workers (to share cluster-wide rates). */
  liveWorkerQueues: string[];
  /** Leader only: some pending job has a cancel request. */
  pendingCancels: boolean;
  /** Leader only: some worker's heartbeat is older than dead-after. */
  deadWorkers: boolean;
  /** Leader only: some running job is past its timeout plus the grace. */
  overdue: boolean;
  /** Leader only: a workflow row waits for the leader (release, fail fast, cancel, cascade, deadline). */
  workflows: boolean;
  /** Some concurrency key's line of parked jobs has no next: jobsAdvanceKeyLines repairs it. */
  keyLinesOpen: boolean;
  /** When the next schedule tick is due (read by every replica: any may make it). */
  schedules: SchedulePeek;
}

/** What the leader's part of the probe needs; `undefined` on a follower. */
export interface LeaderProbe {
  worker: string;
  deadAfterMs: number;
  defaultTimeoutMs: number;
  graceMs: number;
}

/**
 * EXISTS: a worker other than `worker` is silent for longer than dead-after. The derived
 * table (materialised: LIMIT) lets the heartbeat UPDATE of job_workers read job_workers.
 * Params: dead-after ms, worker.
 */
const DEAD_WORKERS_EXIST = `EXISTS (SELECT 1 FROM (
    SELECT id FROM job_workers WHERE heartbeat_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND AND id <> ? LIMIT 1) d)`;
/** EXISTS: a running job past its timeout plus grace. Params: default timeout ms, grace ms. */
const OVERDUE_EXIST = `EXISTS (SELECT 1 FROM jobs o LEFT JOIN job_queues oq ON oq.name = o.queue
    WHERE o.status = 'running'
      AND o.started_at < NOW(3) - INTERVAL (COALESCE(o.timeout_ms, oq.timeout_ms, ?) + ?) * 1000 MICROSECOND)`;

/** EXISTS: a pending job with a cancel request (served by jobs_cancel_pending). */
const PENDING_CANCELS_EXIST = 'EXISTS (SELECT 1 FROM jobs c WHERE c.cancel_pending = 1)';

/** The leader checks' params, in the order DEAD_WORKERS_EXIST then OVERDUE_EXIST take them. */
function leaderParams(leader: LeaderProbe): unknown[] {
  return [leader.deadAfterMs, leader.worker, leader.defaultTimeoutMs, leader.graceMs];
}

function leaderChecks(leader: LeaderProbe | undefined): { sql: string; params: unknown[] } {
  if (!leader) return { sql: '0 AS dead_workers, 0 AS overdue, 0 AS pending_cancels, 0 AS workflows', params: [] };
  return {
    sql: `${DEAD_WORKERS_EXIST} AS dead_workers, ${OVERDUE_EXIST} AS overdue, ${PENDING_CANCELS_EXIST} AS pending_cancels,
       ${WORKFLOWS_TODO_EXIST} AS workflows`,
    params: leaderParams(leader),
  };
}

/** Keeps only rows of the served queues; `[]` serves all. */
function queueFilter(column: string, queues: readonly string[]): { sql: string; params: unknown[] } {
  return queues.length === 0 ? { sql: '1=1', params: [] } : { sql: `${column} IN (?)`, params: [queues] };
}

/**
 * The queues with pending jobs are found by a loose index scan of jobs_claim — one dive
 * per queue, whatever the backlog — which MariaDB chooses only for `DISTINCT status,
 * queue` in a derived table whose WHERE names only status and queue (a replica's first probe, with
 * no queue known yet, read all 1,200,000 pending entries of a backlog in ~1 s before).
 * Skips the queues already registered: the pending entries of jobs_claim are then read
 * only for queues not yet in job_queues, not for the whole backlog (with 10,000 jobs
 * waiting, every probe read 10,000 index entries). `known` comes from the last probe; a
 * queue registered meanwhile by another replica is merely registered again.
 */
function unknownQueues(column: string, known: readonly string[]): { sql: string; params: unknown[] } {
  return known.length === 0 ? { sql: '1=1', params: [] } : { sql: `${column} NOT IN (?)`, params: [known] };
}

/** Whom both forms ask for. */
interface ProbeScope {
  /** Served queues; `[]` serves all. */
  queues: readonly string[];
  /** The leader's checks; omitted on a follower. */
  leader?: LeaderProbe | undefined;
  /** Queues known to be registered (from the last probe). */
  known?: readonly string[];
}

export interface ProbeParams extends ProbeScope {
  /** A worker whose heartbeat is younger than this is live (to share rates). */
  deadAfterMs: number;
}

/**
 * One statement a poll: queue settings, which queues have due work, queues not yet
 * registered, live workers, whether pending cancel requests wait, when the next schedule
 * tick is due, and — for the leader —
 * whether its sweeps have anything to do. Every subquery is served by an index.
 * Params: served queues, dead-after ms, leader checks, queues known to be registered.
 */
export async function jobsProbe(db: Executor, { queues, deadAfterMs, leader, known = [] }: ProbeParams): Promise<Probe> {
  const qf = queueFilter('q.name', queues);
  const jf = queueFilter('j.queue', queues);
  const uf = unknownQueues('j.queue', known);
  const lc = leaderChecks(leader);
  const rows = await db.run(
    'jobsProbe',
    `SELECT
       (SELECT JSON_ARRAYAGG(JSON_OBJECT(
          'name', q.name, 'paused', q.paused, 'rate', q.rate_per_sec, 'concurrency', q.concurrency,
          'timeout', q.timeout_ms,
          'ready', ${STARTABLE_EXISTS},
          'scheduled_in_us', ${SCHEDULED_IN_US}))
        FROM job_queues q WHERE ${qf.sql}) AS queues,
       (SELECT JSON_ARRAYAGG(n.queue) FROM (
          SELECT DISTINCT j.status, j.queue FROM jobs j
          WHERE j.status = 'pending' AND ${jf.sql} AND ${uf.sql}) n
        WHERE NOT EXISTS (SELECT 1 FROM job_queues k WHERE k.name = n.queue)) AS new_queues,
       (SELECT JSON_ARRAYAGG(w.queues) FROM job_workers w
        WHERE w.heartbeat_at >= NOW(3) - INTERVAL ? * 1000 MICROSECOND) AS live_workers,
       ${KEY_LINES_OPEN_EXISTS} AS key_lines_open,
       ${SCHEDULES_PEEK_COLUMNS},
       ${lc.sql}`,
    [...qf.params, ...jf.params, ...uf.params, deadAfterMs, ...lc.params],
  );
  return probeOf(rows[0] ?? {});
}

function probeOf(row: Row): Probe {
  return {
    queues: jsonList(row.queues).filter(isRow).map(queueRowOf),
    newQueues: jsonList(row.new_queues).map(text),
    liveWorkerQueues: jsonList(row.live_workers).map(text),
    pendingCancels: flag(row.pending_cancels),
    deadWorkers: flag(row.dead_workers),
    overdue: flag(row.overdue),
    workflows: flag(row.workflows),
    keyLinesOpen: flag(row.key_lines_open),
    schedules: schedulePeekOf(row),
  };
}

/** One queue of the probe's JSON_ARRAYAGG. */
function queueRowOf(q: Row): QueueRow {
  const scheduledInUs = numOrNull(q.scheduled_in_us);
  return {
    name: text(q.name),
    paused: flag(q.paused),
    ratePerSec: numOrNull(q.rate),
    concurrency: numOrNull(q.concurrency),
    timeoutMs: numOrNull(q.timeout),
    ready: flag(q.ready),
    scheduledInMs: scheduledInUs === null ? null : scheduledInUs / 1000,
  };
}

export interface HeartbeatIfQuietParams extends ProbeScope {
  worker: string;
}

/**
 * The idle replica's heartbeat and probe in one statement: refreshes heartbeat_at only if
 * nothing waits for this replica — no job that could start now in a served, unpaused
 * queue, no scheduled job due in a served queue (paused or not: it is promoted anyway),
 * no key line to repair, no new queue,
 * no pending cancel, no schedule tick due or row to compute, and (leader) no dead worker
 * or overdue job. True: beat written and
 * all quiet. False: something to do (or the row is gone): run the full probe.
 * Params: worker, served queues, leader checks.
 */
export async function workersHeartbeatIfQuiet(db: Executor, { worker, queues, leader, known = [] }: HeartbeatIfQuietParams): Promise<boolean> {
  const qf = queueFilter('q.name', queues);
  const nf = queueFilter('n.queue', queues);
  const uf = unknownQueues('n.queue', known);
  const leaderQuiet = leader
    ? `AND NOT ${DEAD_WORKERS_EXIST} AND NOT ${OVERDUE_EXIST} AND NOT ${PENDING_CANCELS_EXIST} AND NOT ${WORKFLOWS_TODO_EXIST}`
    : '';
  const r = await db.run<{ affectedRows: number }>(
    'workersHeartbeatIfQuiet',
    `UPDATE job_workers SET heartbeat_at = NOW(3)
     WHERE id = ?
       AND NOT EXISTS (SELECT 1 FROM job_queues q WHERE ${qf.sql} AND q.paused = 0 AND ${STARTABLE_EXISTS})
       AND NOT EXISTS (SELECT 1 FROM job_queues q WHERE ${qf.sql} AND ${SCHEDULED_DUE})
       AND NOT ${KEY_LINES_OPEN_EXISTS}
       AND NOT EXISTS (
         SELECT 1 FROM (SELECT DISTINCT n.status, n.queue FROM jobs n WHERE n.status = 'pending' AND ${nf.sql} AND ${uf.sql}) d
         WHERE NOT EXISTS (SELECT 1 FROM job_queues k WHERE k.name = d.queue))
       AND ${SCHEDULES_QUIET}
       ${leaderQuiet}`,
    [worker, ...qf.params, ...qf.params, ...nf.params, ...uf.params, ...(leader ? leaderParams(leader) : [])],
  );
  return r.affectedRows === 1;
}
