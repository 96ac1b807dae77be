/**
 * The SQL of the claim lanes (migration 004, docs/flat-cost.md), named table-then-verb
 * like every file of src/db/queries/. A pending row that cannot start now — scheduled for
 * later, paused, cancel requested, parked behind a busy concurrency key — sits outside lane 0
 * of jobs_claim, so the claim and the probe never step over it:
 *
 *   lane 0  can start now, in (priority, run_at, id) order: what the claim reads
 *   lane 1  scheduled: run_at was later than the row's last write; in run_at order.
 *           The promoter rewrites due rows (updated_at = NOW(3)) into lane 0.
 *   lane 2  parked behind its key's holder (key_wait = 1); each key's line, per queue,
 *           is in jobs_key_waits, and its first row is kept "next" (key_wait = 2, in
 *           lane 0): when the key frees, the next claim takes it and moves the line on.
 *   lane 3  paused or cancel requested
 *
 * Every statement here reads a bounded number of index entries: one per queue, per key
 * line, or per row it moves.
 */
import type { Executor } from '../database.js';

/**
 * EXISTS: a row of queue `q.name` that a claim would take now: lane 0, due, and not the
 * next of a line whose key is still held (those are walked: one per busy key).
 * Used inside a statement where `q` is a job_queues row. No params.
 */
export const STARTABLE_EXISTS = `EXISTS (SELECT 1 FROM jobs j WHERE j.status = 'pending' AND j.queue = q.name AND j.claim_lane = 0
            AND j.run_at <= NOW(3)
            AND (j.key_wait IS NULL OR NOT EXISTS (SELECT 1 FROM jobs jh WHERE jh.active_concurrency_key = j.concurrency_key)))`;

/**
 * run_at of queue `q.name`'s earliest scheduled row (NULL: none): the first entry of lane
 * 1, where claim_priority is NULL, so the lane is in run_at order. ORDER BY … LIMIT 1, not
 * MIN(): for a queue named by the outer row MIN() would read the whole lane. No params.
 */
const FIRST_SCHEDULED = `(SELECT js.run_at FROM jobs js
            WHERE js.status = 'pending' AND js.queue = q.name AND js.claim_lane = 1 AND js.claim_priority IS NULL
            ORDER BY js.run_at LIMIT 1)`;

/** µs from now until queue `q.name`'s earliest scheduled row is due (≤ 0: due; NULL: none). No params. */
export const SCHEDULED_IN_US = `TIMESTAMPDIFF(MICROSECOND, NOW(3), ${FIRST_SCHEDULED})`;

/** True when queue `q.name` has a scheduled row that is due. No params. */
export const SCHEDULED_DUE = `${FIRST_SCHEDULED} <= NOW(3)`;

/**
 * The key lines that have parked rows and no next (its next was paused, cancelled or
 * edited, or a claim raced a park). A loose index scan of jobs_key_waits: one read per
 * line, not per parked row. `where` narrows the keys. No params beyond `where`'s.
 */
function linesWithoutNext(where: string, limit: string): string {
  return `SELECT waits_for_key, queue FROM jobs WHERE ${where}
          GROUP BY waits_for_key, queue HAVING MAX(key_wait) = 1 LIMIT ${limit}`;
}

/** EXISTS: some key line lacks a next. No params. */
export const KEY_LINES_OPEN_EXISTS = `EXISTS (SELECT 1 FROM (${linesWithoutNext('waits_for_key IS NOT NULL', '1')}) kl)`;

/**
 * Moves due scheduled rows of these queues into lane 0: rewriting updated_at makes
 * run_at ≤ updated_at. At most `limit` rows, in run_at order per queue; the caller
 * repeats while a batch comes back full. Any replica serving the queue may run it: two
 * at once only wait on each other's row locks, then find the rows moved.
 * Params: queues, limit. Returns rows moved.
 */
export async function jobsPromoteDue(db: Executor, queues: readonly string[], limit: number): Promise<number> {
  if (queues.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsPromoteDue',
    `UPDATE jobs SET updated_at = NOW(3)
     WHERE status = 'pending' AND queue IN (?) AND claim_lane = 1 AND claim_priority IS NULL AND run_at <= NOW(3)
     LIMIT ?`,
    [queues, limit],
  );
  return r.affectedRows;
}

/** A key line: the parked jobs of one concurrency key in one queue. */
export interface KeyLine {
  key: string;
  queue: string;
}

/** First parked row of line (?, ?) in claim order: one index dive. Params: key, queue. */
const FIRST_PARKED = `SELECT x.id FROM jobs x WHERE x.waits_for_key = ? AND x.queue = ? AND x.key_wait = 1
                      ORDER BY x.priority, x.run_at, x.id LIMIT 1`;

/**
 * Gives key lines that have parked rows but no next their next: the first parked row in
 * claim order (priority, run_at, id). `lines`: these lines (a claim just took their
 * next), one index dive each; undefined: every line without a next (the probe's repair),
 * found by a loose scan of jobs_key_waits that reads one entry per line.
 * Params: lines, limit. Returns lines moved on.
 */
export async function jobsAdvanceKeyLines(db: Executor, lines: readonly KeyLine[] | undefined, limit = 1000): Promise<number> {
  if (lines && lines.length === 0) return 0;
  // The derived tables are materialised (UNION, GROUP BY, LIMIT), so the UPDATE may read jobs.
  const heads = lines
    ? {
        sql: lines
          .map(() => `SELECT (${FIRST_PARKED}) AS id FROM DUAL
                      WHERE NOT EXISTS (SELECT 1 FROM jobs d WHERE d.waits_for_key = ? AND d.queue = ? AND d.key_wait = 2)`)
          .join(' UNION ALL '),
        params: lines.flatMap((l) => [l.key, l.queue, l.key, l.queue]),
      }
    : {
        sql: `SELECT (SELECT x.id FROM jobs x WHERE x.waits_for_key = kl.waits_for_key AND x.queue = kl.queue AND x.key_wait = 1
                      ORDER BY x.priority, x.run_at, x.id LIMIT 1) AS id
              FROM (${linesWithoutNext('waits_for_key IS NOT NULL', '?')}) kl`,
        params: [limit],
      };
  const r = await db.run<{ affectedRows: number }>(
    'jobsAdvanceKeyLines',
    `UPDATE jobs p JOIN (${heads.sql} LIMIT ?) n ON p.id = n.id
     SET p.key_wait = 2
     WHERE p.key_wait = 1`,
    [...heads.params, limit],
  );
  return r.affectedRows;
}
