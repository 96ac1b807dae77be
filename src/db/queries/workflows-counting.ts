/**
 * Children counted into their parents (DESIGN.md "Workflows"), and what that settles:
 * release of parents that may run, fail-fast of parents a failed child dooms, up the tree.
 *
 * Counting: a child's final state is added to its parent's deps_done / deps_failed in the
 * transaction of the child's own fenced final write, so both commit or neither does, and a
 * write that matched no row (a late answer) adds nothing. Increments are summed per parent
 * first: a batch of 1,000 children of one parent is one `+1000`, not 1,000 updates of a
 * hot row. `counted_as` on the child remembers what it added: a child that ends again
 * (retried by hand) moves its count from one counter to the other instead of adding twice.
 *
 * Lock order, for every workflows-*.ts file and the rescue (jobs-rescue.ts): children
 * first (the rows a transaction ends, locked in ascending id), then their parents
 * (ascending id), then grandparents, and so on up. Nothing locks a parent and then one of
 * its children: cascades (workflows-cascades.ts) push to the children in statements of
 * their own, outside any transaction that holds the parent. So a finishing child and a
 * cascade, a release or a deadline never wait for each other in a cycle.
 */
import type { Executor } from '../database.js';
import { num, numOrNull, text, textOrNull, type Row } from './rows.js';
import { TODO } from './workflows-todo.js';

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

/**
 * SQL: counted_as for a row that ends in the status the expression yields (a parameter or
 * column). Rows without a parent keep NULL. `j` is the alias of jobs, or '' for none.
 */
export function countedAsAssignment(status: string, alias = ''): string {
  const a = alias ? `${alias}.` : '';
  return `${a}counted_as = IF(${a}parent_id IS NULL, NULL, IF(${status} = 'done', 'done', 'failed'))`;
}

export interface LockEndingParams {
  ids: readonly number[];
  /** SQL on jobs, no alias. */
  condition: string;
  /** The condition's params. */
  params?: unknown[];
}

/**
 * Locks the rows of `ids` that still match `condition`, in id order, for a transaction
 * that ends them. Params: ids, condition params.
 */
export async function jobsLockEnding(tx: Executor, { ids, condition, params = [] }: LockEndingParams): Promise<LockedJob[]> {
  if (ids.length === 0) return [];
  const rows = await tx.run(
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

export interface LockFinishingParams {
  worker: string;
  /** The status the runs' rows must still have. */
  from: string;
  runs: ReadonlyArray<{ id: number; attempts: number }>;
}

/**
 * Locks the children of a batch of runs that are about to end (fenced like jobsFinish:
 * id, attempts, worker, expected status). The jobsFinish that follows, in the same
 * transaction, ends exactly these. Params: ids, (id, attempts) pairs, worker, status.
 */
export async function jobsLockFinishingChildren(tx: Executor, { worker, from, runs }: LockFinishingParams): Promise<LockedJob[]> {
  if (runs.length === 0) return [];
  const rows = await tx.run(
    'jobsLockFinishingChildren',
    `SELECT id, parent_id, counted_as FROM jobs
     WHERE id IN (?) AND (id, attempts) IN (?) AND worker = ? AND status = ? AND parent_id IS NOT NULL
     ORDER BY id FOR UPDATE`,
    [runs.map((r) => r.id), runs.map((r) => [r.id, r.attempts]), worker, from],
  );
  return rows.map(lockedOf);
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
  return mergeEffects(effects, await jobsSettleParents(tx, { ids: [...deltas.keys()], mayFail, hints }));
}

export interface SettleParams {
  /** Waiting jobs that may be released. */
  ids: readonly number[];
  /** Those of them a failed child may doom. */
  mayFail: readonly number[];
  /** Per parent, the child to name in its fail-fast error. */
  hints?: ReadonlyMap<number, number>;
}

/**
 * Releases the waiting jobs of `ids` that may run now and fails fast those of `mayFail`
 * that a failed child dooms. The rows are locked by the caller (or by these statements).
 * Params: ids; ids that may be doomed; child hints for their errors.
 */
export async function jobsSettleParents(tx: Executor, { ids, mayFail, hints = new Map() }: SettleParams): Promise<ParentEffects> {
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
  const doomed = await jobsLockEnding(tx, { ids: mayFail, condition: 'workflow_todo = ?', params: [TODO.failFast] });
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
  const parentHints = new Map(doomed.flatMap((d) => (d.parentId === null ? [] : [[d.parentId, d.id] as const])));
  return mergeEffects(effects, await jobsCountIntoParents(tx, doomed.map((d) => ({ ...d, status: 'failed' as const })), parentHints));
}

/** The child a fail-fast error names. */
interface Culprit {
  id: number;
  type: string;
  status: string;
  error: string | null;
}

function culpritOf(r: Row): Culprit {
  return { id: num(r.id), type: text(r.type), status: text(r.status), error: textOrNull(r.error) };
}

/** Per parent, the failed child its fail-fast error names. Primary-key reads, then one index range per parent without a hint. */
async function failedChildren(tx: Executor, parents: readonly number[], hints: ReadonlyMap<number, number>): Promise<Map<number, Culprit>> {
  const out = new Map<number, Culprit>();
  const hinted = parents.filter((p) => hints.has(p));
  if (hinted.length > 0) {
    const rows = await tx.run(
      'jobsSelectCulprits',
      'SELECT id, parent_id, type, status, LEFT(error, 500) AS error FROM jobs WHERE id IN (?)',
      [hinted.map((p) => hints.get(p))],
    );
    for (const r of rows) out.set(num(r.parent_id), culpritOf(r));
  }
  for (const parent of parents.filter((p) => !out.has(p))) {
    const [r] = await tx.run(
      'jobsSelectFailedChild',
      `SELECT id, type, status, LEFT(error, 500) AS error FROM jobs
       WHERE parent_id = ? AND status IN ('failed', 'cancelled') ORDER BY id LIMIT 1`,
      [parent],
    );
    if (r) out.set(parent, culpritOf(r));
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
