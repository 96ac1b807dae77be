/**
 * Over 300 lines: the core statements still live together; splitting them by table with
 * named parameters is open work (issue #12). Newer features have files of their own under
 * queries/.
 *
 * Every SQL statement sluice sends, named table-then-verb. Each takes an Executor (the
 * pool, or a connection inside a transaction) and documents its parameters.
 *
 * Fencing: every write made on behalf of a run is conditional on the row still belonging
 * to that run — (id, worker, attempts) and the status the run expects — so a late answer
 * from a run that was rescued, cancelled or handed back changes nothing.
 */
import { INLINE_PAYLOAD_BYTES, MAX_BACKOFF_EXPONENT } from '../limits.js';
import type { Database, Executor } from './database.js';
import { KEY_LINES_OPEN_EXISTS, SCHEDULED_DUE, SCHEDULED_IN_US, STARTABLE_EXISTS } from './queries/claim-lanes.js';
import { SCHEDULES_PEEK_COLUMNS, SCHEDULES_QUIET, schedulePeekOf, type SchedulePeek } from './queries/schedules.js';
import { countedAsAssignment, jobsCountIntoParents, lockedOf, WORKFLOWS_TODO_EXIST } from './queries/workflows.js';
import { inTransaction } from './transaction.js';

/** A claimed job as the runner needs it. */
export interface ClaimedJob {
  id: number;
  queue: string;
  type: string;
  /** The payload; undefined while deferred (read when the job starts). */
  payload: unknown;
  /** Bytes of the payload's JSON text (0 when NULL). */
  payloadBytes: number;
  /** Larger than INLINE_PAYLOAD_BYTES: not read by the claim, but when the run starts. */
  payloadDeferred: boolean;
  priority: number;
  /** run_at as the server wrote it (claim order: priority, run_at, id). */
  runAt: string;
  /** attempts before this run; the run is attempt `attempts + 1`. */
  attempts: number;
  maxAttempts: number;
  timeoutMs: number | null;
  concurrencyKey: string | null;
  /** ms from run_at to the claim. */
  waitedMs: number;
  /**
   * Claimed before (handed back, rescued, or retried): the row still names its previous
   * holder. Such a run writes `running` before its handler starts, so a job that kills
   * its process at once still uses up attempts instead of looping.
   */
  reclaimed: boolean;
  /** Parked before by its own handler (suspended_at set): this run is `job.resumed`. */
  resumed: boolean;
  /** deps_total: the children it waits or waited for (0 when none). */
  childCount: number;
}

interface ClaimRow {
  id: number;
  queue: string;
  type: string;
  payload: unknown;
  payload_bytes: number | string | null;
  priority: number;
  run_at: string;
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  concurrency_key: string | null;
  waited_ms: number | string;
  worker: string | null;
  resumed: number | string;
  deps_total: number | string;
  key_wait: number | null;
  blocked: number | string;
}

/**
 * A row a claim looked at: a job it may take (`blocked` 0), or one whose concurrency key
 * is held, to park (1: it may become its line's next; 2: its line has a next that comes
 * first).
 */
export interface ReadyRow extends ClaimedJob {
  blocked: 0 | 1 | 2;
  /** The row was its key line's next: taking it moves the line on (jobsAdvanceKeyLines). */
  nextInLine: boolean;
}

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

function leaderChecks(leader: LeaderProbe | undefined): { sql: string; params: unknown[] } {
  if (!leader) return { sql: '0 AS dead_workers, 0 AS overdue, 0 AS pending_cancels, 0 AS workflows', params: [] };
  return {
    sql: `${DEAD_WORKERS_EXIST} AS dead_workers, ${OVERDUE_EXIST} AS overdue, ${PENDING_CANCELS_EXIST} AS pending_cancels,
       ${WORKFLOWS_TODO_EXIST} AS workflows`,
    params: [leader.deadAfterMs, leader.worker, leader.defaultTimeoutMs, leader.graceMs],
  };
}

/** Keeps only rows of the served queues; `[]` serves all. */
function queueFilter(column: string, queues: readonly string[]): { sql: string; params: unknown[] } {
  return queues.length === 0 ? { sql: '1=1', params: [] } : { sql: `${column} IN (?)`, params: [queues] };
}

/**
 * Skips the queues already registered: the pending entries of jobs_claim are then read
 * only for queues not yet in job_queues, not for the whole backlog (with 10,000 jobs
 * waiting, every probe read 10,000 index entries). `known` comes from the last probe; a
 * queue registered meanwhile by another replica is merely registered again.
 */
function unknownQueues(column: string, known: readonly string[]): { sql: string; params: unknown[] } {
  return known.length === 0 ? { sql: '1=1', params: [] } : { sql: `${column} NOT IN (?)`, params: [known] };
}

/**
 * One statement a poll: queue settings, which queues have due work, queues not yet
 * registered, live workers, whether pending cancel requests wait, when the next schedule
 * tick is due, and — for the leader —
 * whether its sweeps have anything to do. Every subquery is served by an index.
 * Params: served queues, dead-after ms, leader checks, queues known to be registered.
 */
export async function jobsProbe(
  db: Executor,
  queues: readonly string[],
  deadAfterMs: number,
  leader?: LeaderProbe,
  known: readonly string[] = [],
): Promise<Probe> {
  const qf = queueFilter('q.name', queues);
  const jf = queueFilter('j.queue', queues);
  const uf = unknownQueues('j.queue', known);
  const lc = leaderChecks(leader);
  const rows = await db.run<Array<Record<string, unknown>>>(
    'jobsProbe',
    `SELECT
       (SELECT JSON_ARRAYAGG(JSON_OBJECT(
          'name', q.name, 'paused', q.paused, 'rate', q.rate_per_sec, 'concurrency', q.concurrency,
          'timeout', q.timeout_ms,
          'ready', ${STARTABLE_EXISTS},
          'scheduled_in_us', ${SCHEDULED_IN_US}))
        FROM job_queues q WHERE ${qf.sql}) AS queues,
       (SELECT JSON_ARRAYAGG(n.queue) FROM (
          SELECT DISTINCT j.queue FROM jobs j
          WHERE j.status = 'pending' AND ${jf.sql} AND ${uf.sql}
            AND NOT EXISTS (SELECT 1 FROM job_queues k WHERE k.name = j.queue)) n) AS new_queues,
       (SELECT JSON_ARRAYAGG(w.queues) FROM job_workers w
        WHERE w.heartbeat_at >= NOW(3) - INTERVAL ? * 1000 MICROSECOND) AS live_workers,
       ${KEY_LINES_OPEN_EXISTS} AS key_lines_open,
       ${SCHEDULES_PEEK_COLUMNS},
       ${lc.sql}`,
    [...qf.params, ...jf.params, ...uf.params, deadAfterMs, ...lc.params],
  );
  const row = rows[0] ?? {};
  const parse = <T>(v: unknown): T[] => (v == null ? [] : ((typeof v === 'string' ? JSON.parse(v) : v) as T[]));
  const queueRows = parse<{
    name: string;
    paused: unknown;
    rate: number | null;
    concurrency: number | null;
    timeout: number | null;
    ready: unknown;
    scheduled_in_us: number | string | null;
  }>(row.queues);
  return {
    queues: queueRows.map((q) => ({
      name: q.name,
      paused: Boolean(Number(q.paused)),
      ratePerSec: q.rate,
      concurrency: q.concurrency,
      timeoutMs: q.timeout,
      ready: Boolean(Number(q.ready)),
      scheduledInMs: q.scheduled_in_us == null ? null : Number(q.scheduled_in_us) / 1000,
    })),
    newQueues: parse<string>(row.new_queues),
    liveWorkerQueues: parse<string>(row.live_workers),
    pendingCancels: Boolean(Number(row.pending_cancels)),
    deadWorkers: Boolean(Number(row.dead_workers)),
    overdue: Boolean(Number(row.overdue)),
    workflows: Boolean(Number(row.workflows)),
    keyLinesOpen: Boolean(Number(row.key_lines_open)),
    schedules: schedulePeekOf(row),
  };
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
export async function workersHeartbeatIfQuiet(
  db: Executor,
  worker: string,
  queues: readonly string[],
  leader?: LeaderProbe,
  known: readonly string[] = [],
): Promise<boolean> {
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
         SELECT 1 FROM (SELECT DISTINCT n.queue FROM jobs n WHERE n.status = 'pending' AND ${nf.sql} AND ${uf.sql}) d
         WHERE NOT EXISTS (SELECT 1 FROM job_queues k WHERE k.name = d.queue))
       AND ${SCHEDULES_QUIET}
       ${leaderQuiet}`,
    [worker, ...qf.params, ...qf.params, ...nf.params, ...uf.params, ...(leader ? [leader.deadAfterMs, leader.worker, leader.defaultTimeoutMs, leader.graceMs] : [])],
  );
  return r.affectedRows === 1;
}

/** Registers queues first seen in jobs. Params: names. */
export async function queuesRegister(db: Executor, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await db.run('queuesRegister', 'INSERT IGNORE INTO job_queues (name) VALUES ?', [names.map((n) => [n])]);
}

/**
 * Locks the capped queues' rows for the claim transaction, so two replicas cannot both
 * see room under a cluster-wide concurrency cap, then counts their active jobs.
 * Params: queue names.
 */
export async function queuesLockActive(tx: Executor, names: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(names.map((n) => [n, 0]));
  if (names.length === 0) return out;
  await tx.run('queuesLock', 'SELECT name FROM job_queues WHERE name IN (?) FOR UPDATE', [names]);
  // Grouped in index order (status, queue): no temporary table; summed here.
  const rows = await tx.run<Array<{ queue: string; n: number }>>(
    'jobsCountActive',
    `SELECT queue, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running') AND queue IN (?) GROUP BY status, queue`,
    [names],
  );
  for (const r of rows) out.set(r.queue, (out.get(r.queue) ?? 0) + Number(r.n));
  return out;
}

/** Where a claim stopped in jobs_claim order: the next one may start after it. */
export interface ClaimCursor {
  priority: number;
  runAt: string;
  id: number;
}

/** The claimed row's key is held by a queued or running job. */
const KEY_HELD = 'EXISTS (SELECT 1 FROM jobs h WHERE h.active_concurrency_key = jobs.concurrency_key)';
/** The claimed row's key line has a next that comes first in claim order. */
const BEHIND_A_NEXT = `EXISTS (SELECT 1 FROM jobs d
       WHERE d.waits_for_key = jobs.concurrency_key AND d.queue = jobs.queue AND d.key_wait = 2
         AND (d.priority < jobs.priority OR (d.priority = jobs.priority
              AND (d.run_at < jobs.run_at OR (d.run_at = jobs.run_at AND d.id < jobs.id)))))`;

/**
 * Selects and locks up to `limit` rows of one queue's lane 0 — jobs that can start now —
 * lowest priority then oldest first, skipping rows other claimers hold. Served by
 * jobs_claim (status, queue, claim_lane, claim_priority, run_at) without a filesort:
 * scheduled, paused and parked rows are in other lanes and never read.
 *
 * A keyed row whose key is held comes back `blocked`, for the caller to park it (it
 * leaves lane 0 and waits in its key's line), except a line's next, which stays in lane
 * 0 and is only stepped over while its key is held: one row per busy key and queue. (Two
 * claimers racing may both make a next for one line; the later one comes back `blocked`
 * behind the first and is parked.)
 *
 * `after` starts the scan past the previous claim's last row. Claimed rows leave
 * delete-marked entries at the head of lane 0 until InnoDB purges them, and under load a
 * scan from the head walks tens of thousands of them (measured: 42 page reads per
 * claimed row, against 2 with the cursor). The cursor form is a union of ranges the
 * optimizer only seeks with the index forced.
 *
 * Payloads larger than INLINE_PAYLOAD_BYTES stay behind (their size comes along): a claim
 * of many rows never carries many large payloads into memory at once.
 * Params: inline payload bytes, queue, cursor, limit.
 */
export async function jobsSelectReady(tx: Executor, queue: string, limit: number, after?: ClaimCursor): Promise<ReadyRow[]> {
  const cursor = after
    ? {
        sql: 'AND (claim_priority > ? OR (claim_priority = ? AND (run_at > ? OR (run_at = ? AND id > ?))))',
        params: [after.priority, after.priority, after.runAt, after.runAt, after.id],
      }
    : { sql: '', params: [] };
  const rows = await tx.run<ClaimRow[]>(
    'jobsSelectReady',
    `SELECT id, queue, type, IF(LENGTH(payload) <= ?, payload, NULL) AS payload, COALESCE(LENGTH(payload), 0) AS payload_bytes,
            priority, run_at, attempts, max_attempts, timeout_ms, concurrency_key, worker, key_wait,
            suspended_at IS NOT NULL AS resumed, COALESCE(deps_total, 0) AS deps_total,
            TIMESTAMPDIFF(MICROSECOND, run_at, NOW(3)) / 1000 AS waited_ms,
            CASE WHEN concurrency_key IS NULL OR NOT ${KEY_HELD} THEN 0 WHEN ${BEHIND_A_NEXT} THEN 2 ELSE 1 END AS blocked
     FROM jobs FORCE INDEX (jobs_claim)
     WHERE status = 'pending' AND queue = ? AND claim_lane = 0 AND run_at <= NOW(3)
       ${cursor.sql}
       AND (key_wait IS NULL OR NOT ${KEY_HELD} OR ${BEHIND_A_NEXT})
     ORDER BY claim_priority, run_at, id
     LIMIT ?
     FOR UPDATE SKIP LOCKED`,
    [INLINE_PAYLOAD_BYTES, queue, ...cursor.params, limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    queue: r.queue,
    type: r.type,
    payload: typeof r.payload === 'string' ? safeJson(r.payload) : r.payload,
    payloadBytes: Number(r.payload_bytes ?? 0),
    payloadDeferred: Number(r.payload_bytes ?? 0) > INLINE_PAYLOAD_BYTES,
    priority: Number(r.priority),
    runAt: String(r.run_at),
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    timeoutMs: r.timeout_ms == null ? null : Number(r.timeout_ms),
    concurrencyKey: r.concurrency_key,
    waitedMs: Number(r.waited_ms),
    reclaimed: r.worker !== null,
    resumed: Boolean(Number(r.resumed)),
    childCount: Number(r.deps_total),
    blocked: Number(r.blocked) as 0 | 1 | 2,
    nextInLine: Number(r.key_wait) === 2,
  }));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Reads a deferred payload when its job starts, if the job is still this worker's claim.
 * Params: worker, run.
 */
export async function jobsLoadPayload(db: Executor, worker: string, run: RunRef): Promise<{ found: boolean; payload: unknown }> {
  const rows = await db.run<Array<{ payload: unknown }>>(
    'jobsLoadPayload',
    `SELECT payload FROM jobs WHERE id = ? AND worker = ? AND attempts = ? AND status = 'queued'`,
    [run.id, worker, run.attempts],
  );
  const row = rows[0];
  if (!row) return { found: false, payload: undefined };
  return { found: true, payload: typeof row.payload === 'string' ? safeJson(row.payload) : row.payload };
}

/** Rows a claim parks: each leaves lane 0 for its key's line. */
export interface KeyParking {
  /** key_wait = 1: parked behind the line's next. */
  parked: readonly number[];
  /** key_wait = 2: the line's next, kept in lane 0 to go as soon as the key frees. */
  next: readonly number[];
}

/**
 * Marks locked rows claimed by this worker (a claimed row leaves any key line), and in
 * the same statement parks the locked rows whose key is held.
 * Params: worker, claimed ids, parked rows. Returns rows claimed or parked.
 */
export async function jobsMarkQueued(tx: Executor, worker: string, ids: readonly number[], park?: KeyParking): Promise<number> {
  const parked = park?.parked ?? [];
  const next = park?.next ?? [];
  if (parked.length === 0 && next.length === 0) {
    const r = await tx.run<{ affectedRows: number }>(
      'jobsMarkQueued',
      `UPDATE jobs SET status = 'queued', worker = ?, queued_at = NOW(3), key_wait = NULL WHERE id IN (?) AND status = 'pending'`,
      [worker, ids],
    );
    return r.affectedRows;
  }
  // [0] stands in for an empty list: ids start at 1.
  const list = (xs: readonly number[]): readonly number[] => (xs.length > 0 ? xs : [0]);
  const r = await tx.run<{ affectedRows: number }>(
    'jobsMarkQueued',
    `UPDATE jobs SET
       status = IF(id IN (?), 'queued', status),
       worker = IF(id IN (?), ?, worker),
       queued_at = IF(id IN (?), NOW(3), queued_at),
       key_wait = CASE WHEN id IN (?) THEN NULL WHEN id IN (?) THEN 1 ELSE 2 END
     WHERE id IN (?) AND status = 'pending'`,
    [list(ids), list(ids), worker, list(ids), list(ids), list(parked), [...ids, ...parked, ...next]],
  );
  return r.affectedRows;
}

/** A run's identity: the fence of every write it makes. */
export interface RunRef {
  id: number;
  /** attempts before the run (as claimed). */
  attempts: number;
}

/**
 * Marks claimed jobs running (attempts + 1). Params: worker, (id, attempts) pairs.
 * Returns how many rows moved; fewer than asked means some were cancelled or taken.
 */
export async function jobsMarkRunning(db: Executor, worker: string, runs: readonly RunRef[]): Promise<number> {
  const r = await db.run<{ affectedRows: number }>(
    'jobsMarkRunning',
    `UPDATE jobs SET status = 'running', started_at = NOW(3), attempts = attempts + 1, progress = NULL
     WHERE id IN (?) AND (id, attempts) IN (?) AND worker = ? AND status = 'queued'`,
    [runs.map((r) => r.id), runs.map((r) => [r.id, r.attempts]), worker],
  );
  return r.affectedRows;
}

/** Which of these runs this worker now holds as running. Params: worker, runs. */
export async function jobsRunningOf(db: Executor, worker: string, runs: readonly RunRef[]): Promise<Set<number>> {
  const rows = await db.run<Array<{ id: number }>>(
    'jobsRunningOf',
    `SELECT id FROM jobs WHERE id IN (?) AND (id, attempts) IN (?) AND worker = ? AND status = 'running'`,
    [runs.map((r) => r.id), runs.map((r) => [r.id, r.attempts + 1]), worker],
  );
  return new Set(rows.map((r) => Number(r.id)));
}

/** How a run ended, as written to its row. */
export interface Outcome {
  id: number;
  /** attempts value the row must have (the run's attempt number; claimed value if never started). */
  attempts: number;
  /** The status the row must still have: 'running', or 'queued' for a job cancelled before it started. */
  from: 'running' | 'queued';
  /** 'waiting': the handler enqueued children to wait for (not final; the attempt is not counted). */
  status: 'done' | 'pending' | 'failed' | 'cancelled' | 'waiting';
  /** JSON text of the result (done only). */
  result?: string | null;
  error?: string | null;
  /** pending only: next run no sooner than this many ms from now. */
  delayMs?: number;
  /** pending only: the attempt does not count (hand-back on shutdown). */
  uncount?: boolean;
  /**
   * from 'queued' only: the run did start (its `running` write was folded into this one):
   * count the attempt and set started_at to when it began.
   */
  started?: boolean;
  /** performance.now() when the run began: the statement turns it into "ms before NOW(3)". */
  startedAt?: number;
}

/**
 * Which rows a jobsFinish statement may change: every row of the batch, only rows without
 * a parent (the plain jobs: no counting to do), or only children (inside the transaction
 * that counts them into their parents).
 */
export type FinishScope = 'all' | 'plain' | 'children';

/**
 * Writes a batch of outcomes that share status, expected status and flags in one
 * statement, joined through JSON_TABLE (MySQL 8 and MariaDB 10.6+) on the per-row values
 * only (a lean document parses twice as fast), each row fenced on (id, attempts, worker,
 * expected status). `waiting` parks a job whose handler enqueued children to wait for:
 * not final, the attempt not counted (its next run is the same attempt, resumed).
 * Params: worker, shared fields, rows, scope. Returns rows changed.
 */
export async function jobsFinish(db: Executor, worker: string, outcomes: readonly Outcome[], scope: FinishScope = 'all'): Promise<number> {
  const first = outcomes[0];
  if (!first) return 0;
  const { from, status } = first;
  const uncount = first.uncount ? 1 : 0;
  const started = first.started ? 1 : 0;
  const final = status === 'done' || status === 'failed' || status === 'cancelled' ? 1 : 0;
  // Ended by this write, or parked: the row leaves the queued/running states either way.
  const keepsResult = status === 'done' || status === 'waiting' ? 1 : 0;
  const scopeSql = scope === 'plain' ? 'AND j.parent_id IS NULL' : scope === 'children' ? 'AND j.parent_id IS NOT NULL' : '';
  // Measured as the statement is built, so batching delays do not shift started_at.
  const now = performance.now();
  const doc = JSON.stringify(
    outcomes.map((o) => [o.id, o.attempts, o.result ?? null, o.error ?? null, o.delayMs ?? 0, o.startedAt === undefined ? 0 : Math.round(now - o.startedAt)]),
  );
  const r = await db.run<{ affectedRows: number }>(
    'jobsFinish',
    `UPDATE jobs j
     JOIN JSON_TABLE(?, '$[*]' COLUMNS (
       id BIGINT UNSIGNED PATH '$[0]', att INT PATH '$[1]', res LONGTEXT PATH '$[2]', err LONGTEXT PATH '$[3]',
       delay_ms BIGINT PATH '$[4]', ran_ms BIGINT PATH '$[5]')) v
       ON j.id = v.id AND j.attempts = v.att
     SET j.status = ?,
         j.result = IF(? = 'done', v.res, j.result),
         j.error = IF(? = 1, j.error, v.err),
         j.run_at = IF(? = 'pending', NOW(3) + INTERVAL v.delay_ms * 1000 MICROSECOND, j.run_at),
         j.finished_at = IF(? = 1, NOW(3), NULL),
         j.cancelled_at = IF(? = 'cancelled', NOW(3), j.cancelled_at),
         j.started_at = IF(? = 1, NOW(3) - INTERVAL v.ran_ms * 1000 MICROSECOND, j.started_at),
         j.progress = IF(? = 1, NULL, j.progress),
         j.attempts = j.attempts - ? + ?,
         j.queued_at = IF(? = 1, j.queued_at, NULL),
         j.suspended_at = IF(? = 'waiting', NOW(3), j.suspended_at),
         j.counted_as = IF(? = 1 AND j.parent_id IS NOT NULL, IF(? = 'done', 'done', 'failed'), j.counted_as)
     WHERE j.worker = ? AND j.status = ? ${scopeSql}`,
    [doc, status, status, keepsResult, status, final, status, started, started, uncount, started, final, status, final, status, worker, from],
  );
  return r.affectedRows;
}

/** Outcomes that one jobsFinish statement can carry together. */
export function outcomeGroupKey(o: Outcome): string {
  return `${o.from}|${o.status}|${o.uncount ? 1 : 0}|${o.started ? 1 : 0}`;
}

/** Hands claimed, not started jobs back unchanged. Params: worker, ids. */
export async function jobsReleaseQueued(db: Executor, worker: string, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsReleaseQueued',
    `UPDATE jobs SET status = 'pending', queued_at = NULL WHERE id IN (?) AND worker = ? AND status = 'queued'`,
    [ids, worker],
  );
  return r.affectedRows;
}

/** Stores a run's progress (its `running` write may not have landed yet). Params: pct, run, worker. */
export async function jobsSetProgress(db: Executor, worker: string, run: RunRef, pct: number): Promise<void> {
  await db.run(
    'jobsSetProgress',
    `UPDATE jobs SET progress = ?
     WHERE id = ? AND worker = ?
       AND ((status = 'running' AND attempts = ?) OR (status = 'queued' AND attempts = ?))`,
    [pct, run.id, worker, run.attempts + 1, run.attempts],
  );
}

/** A held job that its run must let go: cancel requested, or no longer ours. */
export interface HeldJobChange {
  id: number;
  cancelRequested: boolean;
  /** Still ours (same worker, attempts, queued/running); false means taken away. */
  stillOurs: boolean;
}

/**
 * Among the jobs this worker holds, those with a cancel request or no longer ours.
 * Primary-key lookups only. Params: worker, held runs (attempts as claimed).
 */
export async function jobsHeldChanges(db: Executor, worker: string, held: readonly RunRef[]): Promise<HeldJobChange[]> {
  if (held.length === 0) return [];
  const claimed = new Map(held.map((h) => [h.id, h.attempts]));
  const rows = await db.run<Array<{ id: number; status: string; worker: string | null; attempts: number; cancel: number }>>(
    'jobsHeldChanges',
    `SELECT id, status, worker, attempts, cancel_requested_at IS NOT NULL AS cancel
     FROM jobs
     WHERE id IN (?)
       AND (cancel_requested_at IS NOT NULL OR status NOT IN ('queued', 'running') OR worker IS NULL OR worker <> ?)`,
    [held.map((h) => h.id), worker],
  );
  return rows.map((r) => {
    // A run's row holds the claimed attempts until its batched `running` write lands, then one more.
    const attempts = claimed.get(Number(r.id));
    const sameRun = attempts !== undefined && (Number(r.attempts) === attempts || Number(r.attempts) === attempts + 1);
    return {
      id: Number(r.id),
      cancelRequested: Boolean(Number(r.cancel)),
      stillOurs: r.worker === worker && (r.status === 'queued' || r.status === 'running') && sameRun,
    };
  });
}

/**
 * Cancels up to `limit` pending jobs whose cancel was requested (leader only; the caller
 * repeats while a batch comes back full). Children are left to the workflow publisher,
 * which counts them into their parents in the same transaction (jobsCancelPendingChildren).
 * Params: limit.
 */
export async function jobsCancelPending(db: Executor, limit: number): Promise<number> {
  const r = await db.run<{ affectedRows: number }>(
    'jobsCancelPending',
    `UPDATE jobs SET status = 'cancelled', cancelled_at = NOW(3), finished_at = NOW(3),
       error = 'cancelled before it started (cancel_requested_at was set)'
     WHERE cancel_pending = 1 AND parent_id IS NULL
     LIMIT ?`,
    [limit],
  );
  return r.affectedRows;
}

/** Registers this process, or refreshes its row. Params: worker row. Returns true if the row was missing. */
export async function workersUpsert(
  db: Executor,
  w: { id: string; host: string; pid: number; version: string; queues: string },
): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>(
    'workersUpsert',
    `INSERT INTO job_workers (id, host, pid, version, queues, started_at, heartbeat_at)
     VALUES (?, ?, ?, ?, ?, NOW(3), NOW(3))
     ON DUPLICATE KEY UPDATE heartbeat_at = NOW(3), host = VALUES(host), pid = VALUES(pid),
       version = VALUES(version), queues = VALUES(queues)`,
    [w.id, w.host, w.pid, w.version, w.queues],
  );
  return r.affectedRows === 1;
}

/** Heartbeat: one statement per replica per interval. Params: worker. Returns false if the row is gone. */
export async function workersHeartbeat(db: Executor, worker: string): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>('workersHeartbeat', 'UPDATE job_workers SET heartbeat_at = NOW(3) WHERE id = ?', [worker]);
  return r.affectedRows > 0;
}

/** Removes this process's row on a clean exit. Params: worker. */
export async function workersDelete(db: Executor, worker: string): Promise<void> {
  await db.run('workersDelete', 'DELETE FROM job_workers WHERE id = ?', [worker]);
}

/** Workers whose heartbeat is older than deadAfterMs. Params: dead-after ms. */
export async function workersSelectDead(db: Executor, deadAfterMs: number): Promise<string[]> {
  const rows = await db.run<Array<{ id: string }>>(
    'workersSelectDead',
    'SELECT id FROM job_workers WHERE heartbeat_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND ORDER BY heartbeat_at LIMIT 100',
    [deadAfterMs],
  );
  return rows.map((r) => r.id);
}

/** Deletes dead workers' rows, fenced on the heartbeat still being old. Params: ids, dead-after ms. */
export async function workersDeleteDead(db: Executor, ids: readonly string[], deadAfterMs: number): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'workersDeleteDead',
    'DELETE FROM job_workers WHERE id IN (?) AND heartbeat_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND',
    [ids, deadAfterMs],
  );
  return r.affectedRows;
}

/**
 * Workers named by queued or running jobs that have no job_workers row at all (a replica
 * whose row was removed while it still held jobs), once those jobs have not moved for
 * dead-after. Reads only the queued and running entries of jobs_claim.
 * Params: dead-after ms.
 */
export async function jobsSelectOrphanWorkers(db: Executor, deadAfterMs: number): Promise<string[]> {
  const rows = await db.run<Array<{ worker: string }>>(
    'jobsSelectOrphanWorkers',
    `SELECT j.worker FROM jobs j
     WHERE j.status IN ('queued', 'running') AND j.worker IS NOT NULL
       AND j.updated_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND
       AND NOT EXISTS (SELECT 1 FROM job_workers w WHERE w.id = j.worker)
     LIMIT 1000`,
    [deadAfterMs],
  );
  // Deduplicated here: DISTINCT would cost a temporary table.
  return [...new Set(rows.map((r) => r.worker))];
}

/**
 * Rescues the jobs of dead workers: queued → pending unchanged; running → pending as a
 * failed attempt (retry after a backoff), or failed when no attempt is left — counted into
 * its parent in the same transaction. Params: worker ids, reason. Returns { requeued, rescued }.
 */
export async function jobsRescueOf(db: Database, workers: readonly string[], reason: string): Promise<{ requeued: number; rescued: number }> {
  if (workers.length === 0) return { requeued: 0, rescued: 0 };
  return inTransaction(db, 'jobsRescue', async (tx) => {
    const q = await tx.run<{ affectedRows: number }>(
      'jobsRequeueOf',
      `UPDATE jobs SET status = 'pending', queued_at = NULL WHERE status = 'queued' AND worker IN (?)`,
      [workers],
    );
    // Children whose last attempt this was: locked here, so the update below ends exactly these.
    const ending = await tx.run<Array<{ id: number; parent_id: number; counted_as: string | null }>>(
      'jobsLockRescuedChildren',
      `SELECT id, parent_id, counted_as FROM jobs
       WHERE status = 'running' AND worker IN (?) AND attempts >= max_attempts AND parent_id IS NOT NULL
       ORDER BY id FOR UPDATE`,
      [workers],
    );
    const r = await tx.run<{ affectedRows: number }>(
      'jobsRescueOf',
      `UPDATE jobs
       SET error = CONCAT(?, ' (worker ', worker, ', attempt ', attempts, ')'),
           run_at = IF(attempts >= max_attempts, run_at, NOW(3) + INTERVAL LEAST(POW(2, LEAST(GREATEST(attempts, 0), ?)), 3600) SECOND),
           finished_at = IF(attempts >= max_attempts, NOW(3), NULL),
           counted_as = IF(parent_id IS NOT NULL AND attempts >= max_attempts, 'failed', counted_as),
           status = IF(attempts >= max_attempts, 'failed', 'pending'),
           queued_at = NULL
       WHERE status = 'running' AND worker IN (?)`,
      [reason, MAX_BACKOFF_EXPONENT, workers],
    );
    await jobsCountIntoParents(tx, ending.map((row) => ({ ...lockedOf(row), status: 'failed' as const })));
    return { requeued: q.affectedRows, rescued: r.affectedRows };
  });
}

/**
 * Cancels running jobs far past their timeout whose worker did not (a blocked event
 * loop, say): a backstop for the runner's own deadline. One read finds them; only then a
 * transaction locks, cancels and counts them into their parents. Params: default timeout
 * ms, grace ms.
 */
export async function jobsCancelOverdue(db: Database, defaultTimeoutMs: number, graceMs: number): Promise<number> {
  const overdue = `j.status = 'running'
       AND j.started_at < NOW(3) - INTERVAL (COALESCE(j.timeout_ms, (SELECT q.timeout_ms FROM job_queues q WHERE q.name = j.queue), ?) + ?) * 1000 MICROSECOND`;
  const found = await db.run<Array<{ id: number }>>('jobsSelectOverdue', `SELECT j.id FROM jobs j WHERE ${overdue} LIMIT 1000`, [defaultTimeoutMs, graceMs]);
  if (found.length === 0) return 0;
  return inTransaction(db, 'jobsCancelOverdue', async (tx) => {
    const locked = await tx.run<Array<{ id: number; parent_id: number | null; counted_as: string | null }>>(
      'jobsLockOverdue',
      `SELECT j.id, j.parent_id, j.counted_as FROM jobs j WHERE j.id IN (?) AND ${overdue} ORDER BY j.id FOR UPDATE`,
      [found.map((f) => Number(f.id)), defaultTimeoutMs, graceMs],
    );
    if (locked.length === 0) return 0;
    const r = await tx.run<{ affectedRows: number }>(
      'jobsCancelOverdue',
      `UPDATE jobs j LEFT JOIN job_queues q ON q.name = j.queue
       SET j.status = 'cancelled', j.cancelled_at = NOW(3), j.finished_at = NOW(3),
           j.error = CONCAT('timed out after ', COALESCE(j.timeout_ms, q.timeout_ms, ?), ' ms (cancelled by the leader: worker ', j.worker, ' did not stop it)'),
           ${countedAsAssignment("'cancelled'", 'j')}
       WHERE j.id IN (?) AND j.status = 'running'`,
      [defaultTimeoutMs, locked.map((l) => Number(l.id))],
    );
    await jobsCountIntoParents(tx, locked.map((row) => ({ ...lockedOf(row), status: 'cancelled' as const })));
    return r.affectedRows;
  });
}

/**
 * Ids of finished jobs older than the retention, oldest first — except children whose
 * parent has not ended: the parent may still read their results (ctx.children()). A
 * parent that is gone has ended. Params: hours, limit.
 */
export async function jobsSelectExpired(db: Executor, hours: number, limit: number): Promise<number[]> {
  const rows = await db.run<Array<{ id: number }>>(
    'jobsSelectExpired',
    `SELECT id FROM jobs WHERE finished_at < NOW(3) - INTERVAL ? * 3600000000 MICROSECOND
       AND (parent_id IS NULL OR NOT EXISTS (
         SELECT 1 FROM jobs p WHERE p.id = jobs.parent_id AND p.status NOT IN ('done', 'failed', 'cancelled')))
     ORDER BY finished_at LIMIT ?`,
    [hours, limit],
  );
  return rows.map((r) => Number(r.id));
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
