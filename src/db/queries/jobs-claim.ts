/**
 * The claim: select and lock the rows that can start now, mark them claimed (parking the
 * ones whose concurrency key is held), and read a deferred payload when its job starts.
 */
import { INLINE_PAYLOAD_BYTES } from '../../limits.js';
import type { Executor } from '../database.js';
import { LEASED_IDS } from './job-leases.js';
import type { RunRef } from './jobs-run.js';
import { flag, json, num, numOrNull, text, textOrNull, type Row } from './rows.js';

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

/**
 * A row a claim looked at: a job it may take (`blocked` 0), or one whose concurrency key
 * is held, to park (1: it may become its line's next; 2: its line has a next that comes
 * first).
 */
export interface ReadyRow extends ClaimedJob {
  blocked: 0 | 1 | 2;
  /** The row was its key line's next: taking it moves the line on (jobsAdvanceKeyLines). */
  nextInLine: boolean;
  /** A workflow's child: its outcome counts into its parent. */
  hasParent: boolean;
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
 * Rows a lease names are skipped: a held claim that rolled back left them pending (see
 * job-leases.ts).
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
  const rows = await tx.run(
    'jobsSelectReady',
    `SELECT id, queue, type, IF(LENGTH(payload) <= ?, payload, NULL) AS payload, COALESCE(LENGTH(payload), 0) AS payload_bytes,
            priority, run_at, attempts, max_attempts, timeout_ms, concurrency_key, worker, key_wait,
            suspended_at IS NOT NULL AS resumed, COALESCE(deps_total, 0) AS deps_total, parent_id IS NOT NULL AS has_parent,
            TIMESTAMPDIFF(MICROSECOND, run_at, NOW(3)) / 1000 AS waited_ms,
            CASE WHEN concurrency_key IS NULL OR NOT ${KEY_HELD} THEN 0 WHEN ${BEHIND_A_NEXT} THEN 2 ELSE 1 END AS blocked
     FROM jobs FORCE INDEX (jobs_claim)
     WHERE status = 'pending' AND queue = ? AND claim_lane = 0 AND run_at <= NOW(3)
       ${cursor.sql}
       AND (key_wait IS NULL OR NOT ${KEY_HELD} OR ${BEHIND_A_NEXT})
       AND id NOT IN (${LEASED_IDS})
     ORDER BY claim_priority, run_at, id
     LIMIT ?
     FOR UPDATE SKIP LOCKED`,
    [INLINE_PAYLOAD_BYTES, queue, ...cursor.params, limit],
  );
  return rows.map(readyRowOf);
}

function readyRowOf(r: Row): ReadyRow {
  const payloadBytes = num(r.payload_bytes ?? 0);
  const blocked = num(r.blocked);
  return {
    id: num(r.id),
    queue: text(r.queue),
    type: text(r.type),
    payload: json(r.payload),
    payloadBytes,
    payloadDeferred: payloadBytes > INLINE_PAYLOAD_BYTES,
    priority: num(r.priority),
    runAt: text(r.run_at),
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    timeoutMs: numOrNull(r.timeout_ms),
    concurrencyKey: textOrNull(r.concurrency_key),
    waitedMs: num(r.waited_ms),
    reclaimed: r.worker != null,
    resumed: flag(r.resumed),
    childCount: num(r.deps_total),
    hasParent: flag(r.has_parent),
    blocked: blocked === 2 ? 2 : blocked === 1 ? 1 : 0,
    nextInLine: num(r.key_wait) === 2,
  };
}

/**
 * Reads a deferred payload when its job starts, if the job is still this worker's claim.
 * Params: worker, run.
 */
export async function jobsLoadPayload(db: Executor, worker: string, run: RunRef): Promise<{ found: boolean; payload: unknown }> {
  const rows = await db.run(
    'jobsLoadPayload',
    `SELECT payload FROM jobs WHERE id = ? AND worker = ? AND attempts = ? AND status = 'queued'`,
    [run.id, worker, run.attempts],
  );
  const row = rows[0];
  if (!row) return { found: false, payload: undefined };
  return { found: true, payload: json(row.payload) };
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
      `UPDATE jobs SET status = 'queued', worker = ?, queued_at = NOW(3), key_wait = NULL, spare_bytes = LEFT(spare_bytes, 24)
       WHERE id IN (?) AND status = 'pending'`,
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
       spare_bytes = IF(id IN (?), LEFT(spare_bytes, 24), spare_bytes),
       key_wait = CASE WHEN id IN (?) THEN NULL WHEN id IN (?) THEN 1 ELSE 2 END
     WHERE id IN (?) AND status = 'pending'`,
    [list(ids), list(ids), worker, list(ids), list(ids), list(ids), list(parked), [...ids, ...parked, ...next]],
  );
  return r.affectedRows;
}
