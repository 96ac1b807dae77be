/**
 * The SQL of workflows (DESIGN.md "Workflows"): children counted into their parents,
 * release, fail-fast, the ends of waiting jobs, cascades of cancel and pause, and the
 * reconciler. Named table-then-verb like every file of src/db/queries/.
 *
 * Counting: a child's final state is added to its parent's deps_done / deps_failed in the
 * transaction of the child's own fenced final write, so both commit or neither does, and a
 * write that matched no row (a late answer) adds nothing. Increments are summed per parent
 * first: a batch of 1,000 children of one parent is one `+1000`, not 1,000 updates of a
 * hot row. `counted_as` on the child remembers what it added: a child that ends again
 * (retried by hand) moves its count from one counter to the other instead of adding twice.
 *
 * Lock order: children first (the rows a transaction ends, locked in ascending id), then
 * their parents (ascending id), then grandparents, and so on up. Nothing here locks a
 * parent and then one of its children: cascades push to the children in statements of their
 * own, outside any transaction that holds the parent. So a finishing child and a cascade,
 * a release or a deadline never wait for each other in a cycle.
 */
import type { Executor } from '../database.js';
import { json, num, numOrNull, type Row } from './rows.js';

/** The final states a child can be counted as. */
export type FinalStatus = 'done' | 'failed' | 'cancelled';

/** What a parent's counters hold for a child. */
export type CountedAs = 'done' | 'failed';

/** A row locked by the current transaction because the transaction is about to end it. */
export interface LockedJob {
  id: number;
  parentId: number | null;
  /** counted_as before this end. */
  countedAs: CountedAs | null;
}

/** A job the current transaction ended (its final write is done, in this transaction). */
export interface EndedJob extends LockedJob {
  status: FinalStatus;
}

/** What counting did to the parents, and to their parents in turn. */
export interface ParentEffects {
  /** Parents moved waiting → pending (sealed, every child ended, approval given). */
  released: number;
  /** Parents failed at once because a child failed (policy 'fail'), with that child. */
  failedFast: Array<{ id: number; childId: number }>;
  /** Children whose final state reached a parent's counters. */
  counted: number;
}

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
 * SQL: counted_as for a row that ends in the status the expression yields (a parameter or
 * column). Rows without a parent keep NULL. `j` is the alias of jobs, or '' for none.
 */
export function countedAsAssignment(status: string, alias = ''): string {
  const a = alias ? `${alias}.` : '';
  return `${a}counted_as = IF(${a}parent_id IS NULL, NULL, IF(${status} = 'done', 'done', 'failed'))`;
}

/**
 * EXISTS, for the leader's probe: a workflow row waits for the leader (release, fail fast,
 * a cancel, a cascade) or a waiting job's deadline has passed. Two index lookups
 * (jobs_workflow_todo, jobs_wait_expiry); an idle probe reads no row. No params.
 */
export const WORKFLOWS_TODO_EXIST = `(EXISTS (SELECT 1 FROM jobs wf WHERE wf.workflow_todo IS NOT NULL)
         OR EXISTS (SELECT 1 FROM jobs wf WHERE wf.wait_expiry <= NOW(3)))`;

/** The leader's look on its own, when no probe has run lately. No params. */
export async function workflowsPeek(db: Executor): Promise<boolean> {
  const rows = await db.run<Array<{ todo: number }>>('workflowsPeek', `SELECT ${WORKFLOWS_TODO_EXIST} AS todo`);
  return Boolean(Number(rows[0]?.todo));
}

/** Ids of rows with this todo, in id order. Served by jobs_workflow_todo. Params: todo, limit. */
export async function jobsSelectTodo(db: Executor, todo: WorkflowTodo, limit: number): Promise<number[]> {
  const rows = await db.run<Array<{ id: number }>>(
    'jobsSelectTodo',
    'SELECT id FROM jobs WHERE workflow_todo = ? ORDER BY id LIMIT ?',
    [TODO[todo], limit],
  );
  return rows.map((r) => Number(r.id));
}

/** Ids of waiting jobs whose wait_deadline has passed. Served by jobs_wait_expiry. Params: limit. */
export async function jobsSelectWaitExpired(db: Executor, limit: number): Promise<number[]> {
  const rows = await db.run<Array<{ id: number }>>(
    'jobsSelectWaitExpired',
    'SELECT id FROM jobs WHERE wait_expiry <= NOW(3) ORDER BY wait_expiry LIMIT ?',
    [limit],
  );
  return rows.map((r) => Number(r.id));
}

/**
 * Locks the rows of `ids` that still match `condition` (SQL on jobs, no alias), in id
 * order, for a transaction that ends them. Params: ids, condition params.
 */
export async function jobsLockEnding(tx: Executor, ids: readonly number[], condition: string, params: unknown[] = []): Promise<LockedJob[]> {
  if (ids.length === 0) return [];
  const rows = await tx.run<Array<{ id: number; parent_id: number | null; counted_as: string | null }>>(
    'jobsLockEnding',
    `SELECT id, parent_id, counted_as FROM jobs WHERE id IN (?) AND ${condition} ORDER BY id FOR UPDATE`,
    [ids, ...params],
  );
  return rows.map(lockedOf);
}

/** A locked row as read. */
export function lockedOf(r: Row): LockedJob {
  const countedAs = r.counted_as === 'done' || r.counted_as === 'failed' ? r.counted_as : null;
  return { id: num(r.id), parentId: numOrNull(r.parent_id), countedAs };
}

/**
 * Ends locked waiting jobs: cancelled (cancel requested) or failed (deadline). A job that
 * ends while it waits also gets cancel_requested_at (if it had none): that is what cancels
 * its children that have not ended (workflow_todo 5). Params: status, error, ids.
 */
export async function jobsEndWaiting(tx: Executor, ids: readonly number[], status: 'failed' | 'cancelled', error: string): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await tx.run<{ affectedRows: number }>(
    'jobsEndWaiting',
    `UPDATE jobs
     SET status = ?, error = ?, finished_at = NOW(3), cancelled_at = IF(? = 'cancelled', NOW(3), cancelled_at),
         cancel_requested_at = COALESCE(cancel_requested_at, NOW(3)), ${countedAsAssignment('?')}
     WHERE id IN (?) AND status = 'waiting'`,
    [status, error, status, status, ids],
  );
  return r.affectedRows;
}

/** Cancels locked pending children that have a cancel request. Params: ids. */
export async function jobsCancelPendingChildren(tx: Executor, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await tx.run<{ affectedRows: number }>(
    'jobsCancelPendingChildren',
    `UPDATE jobs
     SET status = 'cancelled', cancelled_at = NOW(3), finished_at = NOW(3),
         error = 'cancelled before it started (cancel_requested_at was set)', ${countedAsAssignment("'cancelled'")}
     WHERE id IN (?) AND workflow_todo = ?`,
    [ids, TODO.cancelPendingChild],
  );
  return r.affectedRows;
}

/**
 * Adds the final states of jobs this transaction ended to their parents' counters, then
 * settles those parents: release the ones that may run, fail fast the ones a failed child
 * dooms (which ends them, so they are counted into their own parents in turn, up the tree).
 * `hints`: per parent, the child to name in a fail-fast error (else the first failed child).
 */
export async function jobsCountIntoParents(tx: Executor, ended: readonly EndedJob[], hints = new Map<number, number>()): Promise<ParentEffects> {
  const deltas = new Map<number, { done: number; failed: number }>();
  let counted = 0;
  for (const e of ended) {
    if (e.parentId === null) continue;
    const as: CountedAs = e.status === 'done' ? 'done' : 'failed';
    if (e.countedAs === as) continue;
    const d = deltas.get(e.parentId) ?? { done: 0, failed: 0 };
    d[as]++;
    if (e.countedAs !== null) d[e.countedAs]--;
    deltas.set(e.parentId, d);
    counted++;
    if (as === 'failed' && !hints.has(e.parentId)) hints.set(e.parentId, e.id);
  }
  const effects: ParentEffects = { released: 0, failedFast: [], counted };
  if (deltas.size === 0) return effects;
  // Ascending parent id: two transactions that share parents lock them in one order.
  const rows = [...deltas].sort((a, b) => a[0] - b[0]).map(([id, d]) => [id, d.done, d.failed]);
  await tx.run(
    'jobsCountChildren',
    `UPDATE jobs p
     JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$[0]', d INT PATH '$[1]', f INT PATH '$[2]')) v ON p.id = v.id
     SET p.deps_done = GREATEST(0, LEAST(2147483647, p.deps_done + v.d)),
         p.deps_failed = GREATEST(0, LEAST(2147483647, p.deps_failed + v.f))`,
    [JSON.stringify(rows)],
  );
  const mayFail = [...deltas].filter(([, d]) => d.failed > 0).map(([id]) => id);
  return mergeEffects(effects, await jobsSettleParents(tx, [...deltas.keys()], mayFail, hints));
}

/**
 * Releases the waiting jobs of `ids` that may run now and fails fast those of `mayFail`
 * that a failed child dooms. The rows are locked by the caller (or by these statements).
 * Params: ids; ids that may be doomed; child hints for their errors.
 */
export async function jobsSettleParents(
  tx: Executor,
  ids: readonly number[],
  mayFail: readonly number[],
  hints: ReadonlyMap<number, number> = new Map(),
): Promise<ParentEffects> {
  const effects: ParentEffects = { released: 0, failedFast: [], counted: 0 };
  if (ids.length === 0) return effects;
  // The run that goes next is due from now: pickup latency counts from the release.
  const released = await tx.run<{ affectedRows: number }>(
    'jobsRelease',
    `UPDATE jobs SET status = 'pending', run_at = GREATEST(run_at, NOW(3)) WHERE id IN (?) AND workflow_todo = ?`,
    [ids, TODO.release],
  );
  effects.released = released.affectedRows;
  if (mayFail.length === 0) return effects;
  const doomed = await jobsLockEnding(tx, mayFail, 'workflow_todo = ?', [TODO.failFast]);
  return mergeEffects(effects, await jobsFailFast(tx, doomed, hints));
}

/**
 * Fails locked doomed parents, naming the child that failed (the hint, else the first
 * failed or cancelled child by id), and counts them into their own parents.
 */
export async function jobsFailFast(tx: Executor, doomed: readonly LockedJob[], hints: ReadonlyMap<number, number> = new Map()): Promise<ParentEffects> {
  const effects: ParentEffects = { released: 0, failedFast: [], counted: 0 };
  if (doomed.length === 0) return effects;
  const culprits = await failedChildren(tx, doomed.map((d) => d.id), hints);
  const doc = doomed.map((d) => {
    const c = culprits.get(d.id);
    return [d.id, c ? failFastError(c) : 'a child ended failed or cancelled (on_child_failure = fail)'];
  });
  await tx.run(
    'jobsFailFast',
    `UPDATE jobs j
     JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$[0]', err LONGTEXT PATH '$[1]')) v ON j.id = v.id
     SET j.status = 'failed', j.error = v.err, j.finished_at = NOW(3),
         j.cancel_requested_at = COALESCE(j.cancel_requested_at, NOW(3)), ${countedAsAssignment("'failed'", 'j')}
     WHERE j.workflow_todo = ?`,
    [JSON.stringify(doc), TODO.failFast],
  );
  for (const d of doomed) effects.failedFast.push({ id: d.id, childId: culprits.get(d.id)?.id ?? 0 });
  const parentHints = new Map(doomed.filter((d) => d.parentId !== null).map((d) => [d.parentId as number, d.id]));
  return mergeEffects(effects, await jobsCountIntoParents(tx, doomed.map((d) => ({ ...d, status: 'failed' as const })), parentHints));
}

interface Culprit {
  id: number;
  type: string;
  status: string;
  error: string | null;
}

/** Per parent, the failed child its fail-fast error names. Primary-key reads, then one index range per parent without a hint. */
async function failedChildren(tx: Executor, parents: readonly number[], hints: ReadonlyMap<number, number>): Promise<Map<number, Culprit>> {
  const out = new Map<number, Culprit>();
  const hinted = parents.filter((p) => hints.has(p));
  if (hinted.length > 0) {
    const rows = await tx.run<Array<Culprit & { parent_id: number }>>(
      'jobsSelectCulprits',
      'SELECT id, parent_id, type, status, LEFT(error, 500) AS error FROM jobs WHERE id IN (?)',
      [hinted.map((p) => hints.get(p))],
    );
    for (const r of rows) out.set(Number(r.parent_id), { ...r, id: Number(r.id) });
  }
  for (const parent of parents.filter((p) => !out.has(p))) {
    const [r] = await tx.run<Culprit[]>(
      'jobsSelectFailedChild',
      `SELECT id, type, status, LEFT(error, 500) AS error FROM jobs
       WHERE parent_id = ? AND status IN ('failed', 'cancelled') ORDER BY id LIMIT 1`,
      [parent],
    );
    if (r) out.set(parent, { ...r, id: Number(r.id) });
  }
  return out;
}

/** "child 42 (render) ended failed: HTTP 500 …": the error of a parent failed fast. */
export function failFastError(c: Culprit): string {
  const why = c.error ? `: ${c.error.replace(/\s+/g, ' ').trim()}` : '';
  return `child ${c.id} (${c.type}) ended ${c.status}${why}`.slice(0, 1000).toWellFormed();
}

function mergeEffects(a: ParentEffects, b: ParentEffects): ParentEffects {
  return { released: a.released + b.released, failedFast: [...a.failedFast, ...b.failedFast], counted: a.counted + b.counted };
}

/**
 * Releases waiting jobs that may run (sealed, every child ended, approval given) whose
 * release no child's transaction made: the seal or the approval came last. Not a final
 * state, so nothing is counted. Served by jobs_workflow_todo. Params: limit.
 */
export async function jobsReleaseReady(db: Executor, limit: number): Promise<number[]> {
  const ids = await jobsSelectTodo(db, 'release', limit);
  if (ids.length === 0) return [];
  const r = await db.run<{ affectedRows: number }>(
    'jobsReleaseReady',
    `UPDATE jobs SET status = 'pending', run_at = GREATEST(run_at, NOW(3)) WHERE id IN (?) AND workflow_todo = ?`,
    [ids, TODO.release],
  );
  return r.affectedRows === ids.length ? ids : ids.slice(0, r.affectedRows);
}

/**
 * Pushes a cancel request one level down: the children of `parents` that have not ended
 * and have none get cancel_requested_at (their own todo then carries it further). Locks
 * children only. Params: parents, limit. Returns rows changed.
 */
export async function jobsCascadeCancel(db: Executor, parents: readonly number[], limit: number): Promise<number> {
  if (parents.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsCascadeCancel',
    `UPDATE jobs SET cancel_requested_at = NOW(3)
     WHERE parent_id IN (?) AND status IN ('waiting', 'pending', 'queued', 'running') AND cancel_requested_at IS NULL
     LIMIT ?`,
    [parents, limit],
  );
  return r.affectedRows;
}

/** Records that the cancels of these rows reached their children. Params: ids. */
export async function jobsMarkCancelCascaded(db: Executor, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.run(
    'jobsMarkCancelCascaded',
    'UPDATE jobs SET cancel_cascaded_at = COALESCE(cancel_requested_at, NOW(3)) WHERE id IN (?) AND workflow_todo = ?',
    [ids, TODO.cascadeCancel],
  );
}

/** Rows whose paused differs from what their children were last given. Params: limit. */
export async function jobsSelectPauseCascades(db: Executor, limit: number): Promise<Array<{ id: number; paused: boolean }>> {
  const rows = await db.run<Array<{ id: number; paused: number }>>(
    'jobsSelectPauseCascades',
    'SELECT id, paused FROM jobs WHERE workflow_todo = ? ORDER BY id LIMIT ?',
    [TODO.cascadePause, limit],
  );
  return rows.map((r) => ({ id: Number(r.id), paused: Boolean(Number(r.paused)) }));
}

/**
 * Sets paused on the children of `parents` that have not started (waiting, pending); they
 * carry it further themselves. Params: paused, parents, paused, limit. Returns rows changed.
 */
export async function jobsCascadePause(db: Executor, parents: readonly number[], paused: boolean, limit: number): Promise<number> {
  if (parents.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'jobsCascadePause',
    `UPDATE jobs SET paused = ?
     WHERE parent_id IN (?) AND status IN ('waiting', 'pending') AND paused <> ?
     LIMIT ?`,
    [paused, parents, paused, limit],
  );
  return r.affectedRows;
}

/**
 * Children of `parents` that have started but not ended (queued, running): their paused is
 * left alone, but the cascade passes through them to their own children. Params: parents, limit.
 */
export async function jobsSelectStartedChildren(db: Executor, parents: readonly number[], limit: number): Promise<number[]> {
  if (parents.length === 0) return [];
  const rows = await db.run<Array<{ id: number }>>(
    'jobsSelectStartedChildren',
    `SELECT id FROM jobs WHERE parent_id IN (?) AND status IN ('queued', 'running') LIMIT ?`,
    [parents, limit],
  );
  return rows.map((r) => Number(r.id));
}

/** Records that these rows' paused reached their children, if it is still that value. Params: paused, ids. */
export async function jobsMarkPauseCascaded(db: Executor, ids: readonly number[], paused: boolean): Promise<void> {
  if (ids.length === 0) return;
  await db.run('jobsMarkPauseCascaded', 'UPDATE jobs SET pause_cascaded = paused WHERE id IN (?) AND paused = ?', [ids, paused]);
}

/** A child as a page of jobsSelectChildren holds it (ctx.children() yields these). */
export interface ChildRow {
  id: number;
  type: string;
  status: string;
  result: unknown;
  error: string | null;
}

/**
 * One page of a parent's children after `afterId`, in id order: a range of jobs_parent,
 * never more than `limit` rows in memory. Params: parent, after id, limit.
 */
export async function jobsSelectChildren(db: Executor, parentId: number, afterId: number, limit: number): Promise<ChildRow[]> {
  const rows = await db.run<Array<{ id: number; type: string; status: string; result: unknown; error: string | null }>>(
    'jobsSelectChildren',
    'SELECT id, type, status, result, error FROM jobs WHERE parent_id = ? AND id > ? ORDER BY id LIMIT ?',
    [parentId, afterId, limit],
  );
  return rows.map((r) => ({ id: Number(r.id), type: r.type, status: r.status, result: parseJson(r.result), error: r.error }));
}

function parseJson(v: unknown): unknown {
  return json(v) ?? null;
}

/** A waiting parent that may be stuck: sealed, not complete, nothing counted for a while. */
export interface StaleParent {
  id: number;
  depsDone: number;
  depsFailed: number;
}

/**
 * Waiting, sealed parents that still wait for children and whose row has not changed for
 * `idleMs` (no child counted), after `afterId` in id order. Reads the waiting range of
 * jobs_claim. Params: idle ms, after id, limit.
 */
export async function jobsSelectStaleParents(db: Executor, idleMs: number, afterId: number, limit: number): Promise<StaleParent[]> {
  const rows = await db.run<Array<{ id: number; deps_done: number; deps_failed: number }>>(
    'jobsSelectStaleParents',
    `SELECT id, deps_done, deps_failed FROM jobs
     WHERE status = 'waiting' AND deps_total IS NOT NULL AND deps_done + deps_failed < deps_total
       AND updated_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND AND id > ?
     ORDER BY id LIMIT ?`,
    [idleMs, afterId, limit],
  );
  return rows.map((r) => ({ id: Number(r.id), depsDone: Number(r.deps_done), depsFailed: Number(r.deps_failed) }));
}

/** The ended children of a parent, counted from the rows (one range of jobs_parent). Params: parent. */
export async function jobsCountEndedChildren(db: Executor, parentId: number): Promise<{ done: number; failed: number }> {
  const rows = await db.run<Array<{ done: number | null; failed: number | null }>>(
    'jobsCountEndedChildren',
    `SELECT SUM(status = 'done') AS done, SUM(status IN ('failed', 'cancelled')) AS failed FROM jobs WHERE parent_id = ?`,
    [parentId],
  );
  return { done: Number(rows[0]?.done ?? 0), failed: Number(rows[0]?.failed ?? 0) };
}

/**
 * Rewrites a parent's counters from a recount, by compare-and-set on the values read
 * before the recount: a child counted meanwhile changed them, and the fix is skipped (the
 * next pass recounts). Params: done, failed, id, old done, old failed. True if fixed.
 */
export async function jobsFixCounters(db: Executor, p: StaleParent, recount: { done: number; failed: number }): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>(
    'jobsFixCounters',
    `UPDATE jobs SET deps_done = ?, deps_failed = ?
     WHERE id = ? AND status = 'waiting' AND deps_done = ? AND deps_failed = ?`,
    [recount.done, recount.failed, p.id, p.depsDone, p.depsFailed],
  );
  return r.affectedRows === 1;
}

/**
 * Marks the children of a reconciled parent as counted the way their rows say, so a later
 * end of one of them moves its count instead of adding to it. Params: parent.
 */
export async function jobsMarkChildrenCounted(db: Executor, parentId: number): Promise<void> {
  await db.run(
    'jobsMarkChildrenCounted',
    `UPDATE jobs SET counted_as = CASE WHEN status = 'done' THEN 'done' WHEN status IN ('failed', 'cancelled') THEN 'failed' END
     WHERE parent_id = ?`,
    [parentId],
  );
}

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
    const rows = await db.run<Array<{ step: number }>>('jobsIncrementStep', 'SELECT @@auto_increment_increment AS step');
    incrementStep = Math.max(1, Number(rows[0]?.step ?? 1));
  }
  return incrementStep;
}

/**
 * Locks the row of a run this worker holds (queued, or running as attempt attempts + 1)
 * with no cancel request: children can be added under it. Params: id, worker, attempts.
 */
export async function jobsLockOwnRun(tx: Executor, worker: string, run: { id: number; attempts: number }): Promise<boolean> {
  const rows = await tx.run<unknown[]>(
    'jobsLockOwnRun',
    `SELECT id FROM jobs
     WHERE id = ? AND worker = ? AND ((status = 'running' AND attempts = ?) OR (status = 'queued' AND attempts = ?))
       AND cancel_requested_at IS NULL
     FOR UPDATE`,
    [run.id, worker, run.attempts + 1, run.attempts],
  );
  return rows.length === 1;
}

/**
 * Seals a running job over `n` more children (deps_total + n), and sets its policy if
 * given. Params: n, policy, id.
 */
export async function jobsAddDeps(tx: Executor, id: number, n: number, onChildFailure: 'fail' | 'continue' | null): Promise<void> {
  await tx.run(
    'jobsAddDeps',
    'UPDATE jobs SET deps_total = COALESCE(deps_total, 0) + ?, on_child_failure = COALESCE(?, on_child_failure) WHERE id = ?',
    [n, onChildFailure, id],
  );
}

/**
 * Locks the children of a batch of runs that are about to end (fenced like jobsFinish:
 * id, attempts, worker, expected status). The jobsFinish that follows, in the same
 * transaction, ends exactly these. Params: ids, (id, attempts) pairs, worker, status.
 */
export async function jobsLockFinishingChildren(
  tx: Executor,
  worker: string,
  from: string,
  runs: ReadonlyArray<{ id: number; attempts: number }>,
): Promise<LockedJob[]> {
  if (runs.length === 0) return [];
  const rows = await tx.run<Array<{ id: number; parent_id: number | null; counted_as: string | null }>>(
    'jobsLockFinishingChildren',
    `SELECT id, parent_id, counted_as FROM jobs
     WHERE id IN (?) AND (id, attempts) IN (?) AND worker = ? AND status = ? AND parent_id IS NOT NULL
     ORDER BY id FOR UPDATE`,
    [runs.map((r) => r.id), runs.map((r) => [r.id, r.attempts]), worker, from],
  );
  return rows.map(lockedOf);
}
