import type { Database, Executor } from '../db/database.js';
import {
  jobsCascadeCancel,
  jobsCascadePause,
  jobsMarkCancelCascaded,
  jobsMarkPauseCascaded,
  jobsSelectPauseCascades,
  jobsSelectStartedChildren,
} from '../db/queries/workflows-cascades.js';
import {
  jobsCountIntoParents,
  jobsFailFast,
  jobsLockEnding,
  type FinalStatus,
  type LockedJob,
  type ParentEffects,
} from '../db/queries/workflows-counting.js';
import { jobsCountEndedChildren, jobsFixCounters, jobsMarkChildrenCounted, jobsSelectStaleParents } from '../db/queries/workflows-reconcile.js';
import { jobsSelectTodo, jobsSelectWaitExpired, TODO, workflowsPeek } from '../db/queries/workflows-todo.js';
import { jobsCancelPendingChildren, jobsEndWaiting, jobsReleaseReady } from '../db/queries/workflows-waiting.js';
import { inTransaction } from '../db/transaction.js';
import { coerceError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable } from './poller.js';
import type { SweepSignals } from './sweep-signals.js';

export interface WorkflowOptions {
  db: Database;
  leader: Leader;
  events: SluiceEvents;
  /** SLUICE_POLL_MS: everything here happens within one interval of its cause. */
  pollMs: number;
  /** The probe's view; without it the publisher peeks every poll. */
  signals?: SweepSignals;
  /** Rows per statement (default 500). */
  batchSize?: number;
  /**
   * How often the reconciler looks (default 5 min: one statement, so an idle leader's cost
   * stays near one statement a second) and how long a parent must be idle first (default 5 min).
   */
  reconcileEveryMs?: number;
  staleAfterMs?: number;
}

/** Rows one push of a cascade changes at most; a tree bigger than that continues next pass. */
const CASCADE_CHUNK = 1000;
/** Levels a pause passes through started (queued, running) children within one pass. */
const PASS_THROUGH_DEPTH = 16;
/** Waiting parents the reconciler remembers as checked (and their counters then). */
const RECONCILED_MEMORY = 10_000;
/** A parent whose counters did not move is recounted again only after this long. */
const RECHECK_MS = 3_600_000;

/** `more`: the duty found rows, so the next level (or the rest) may be waiting already. */
type Result = { more: boolean };

/**
 * Leader-only: the workflow duties no child's transaction did.
 *
 * - release: waiting jobs whose seal or approval came after their last child (a child
 *   that ends last releases its parent itself, in its own transaction);
 * - fail fast: waiting parents a failed child dooms that were not settled inline (they
 *   parked after the child failed, or their policy changed);
 * - the ends of waiting jobs: cancel requested, wait_deadline passed; and pending children
 *   with a cancel request. Each is one transaction that ends the rows and counts them into
 *   their parents (so the cancel-pending step of the ready-jobs probe leaves children here);
 * - cascades: a cancel request is pushed to the children that have not ended (running ones
 *   are then aborted through their signal by their own replica), and paused to the
 *   children that have not started, one level per statement, in chunks, each level
 *   carrying it further by its own workflow_todo;
 * - the reconciler: sealed parents that have waited long with no child counted are
 *   recounted from their children, and fixed by compare-and-set if the counters drifted
 *   (SQL edits, deleted children, a bug).
 *
 * Idle it sends no statement: the leader's probe says whether any row waits for this
 * (one index lookup, folded into the probe), and the probe's sighting wakes this loop.
 */
export class WorkflowPublisher implements Pollable {
  readonly name = 'workflows';
  private more = false;
  private wasLeader = false;
  private lastReconcile = -Infinity;
  private reconcileAfter = 0;
  private readonly checked = new Map<number, { counters: string; at: number }>();
  private wake: () => void = () => undefined;

  constructor(private readonly opts: WorkflowOptions) {
    // A probe that sees workflow work wakes this loop at once.
    opts.signals?.onWorkflowWork(() => this.wake());
  }

  wakeWith(wake: () => void): void {
    this.wake = wake;
  }

  async runOnce(): Promise<number> {
    const { leader, pollMs, signals, db } = this.opts;
    if (!leader.isLeader()) {
      this.wasLeader = false;
      return pollMs;
    }
    if (!this.wasLeader) signals?.forgetWorkflows();
    this.wasLeader = true;
    const reconcileDue = performance.now() - this.lastReconcile >= (this.opts.reconcileEveryMs ?? 300_000);
    // Right after a pass that found work, look again at once (one index lookup): the next
    // level of a cascade, or a parent its children just released, is due now, not in a poll.
    // A probe older than one interval is not trusted either (a busy replica may have
    // skipped its probe while its channel was full).
    const seen = this.more ? await workflowsPeek(db) : (signals?.workflowWork(pollMs * 1.5) ?? (await workflowsPeek(db)));
    this.more = false;
    if (!seen && !reconcileDue) return pollMs;
    const results = seen ? await this.pass() : [];
    if (reconcileDue) results.push(await this.reconcile());
    this.more = results.some((r) => r.more);
    return this.more ? 0 : pollMs;
  }

  /**
   * Every duty once, each bounded; `more` when one found rows. A duty that fails does
   * not keep the others from running: the first error is thrown once all have had their
   * turn (the poller logs it and backs off).
   */
  async pass(): Promise<Result[]> {
    const duties = [
      () => this.release(),
      () => this.failFast(),
      () => this.endWaiting('cancelled'),
      () => this.endWaiting('deadline'),
      () => this.cancelPendingChildren(),
      () => this.cascadeCancel(),
      () => this.cascadePause(),
    ];
    const results: Result[] = [];
    let failure: Error | undefined;
    for (const duty of duties) {
      try {
        results.push(await duty());
      } catch (err) {
        failure ??= coerceError(err);
      }
    }
    if (failure !== undefined) throw failure;
    return results;
  }

  private get batch(): number {
    return this.opts.batchSize ?? 500;
  }

  async release(): Promise<Result> {
    const ids = await jobsReleaseReady(this.opts.db, this.batch);
    if (ids.length > 0) this.opts.events.emit('workflow:released', { count: ids.length, by: 'leader' });
    return { more: ids.length > 0 };
  }

  async failFast(): Promise<Result> {
    const ids = await jobsSelectTodo(this.opts.db, 'failFast', this.batch);
    const effects = await this.ending(ids, 'workflow_todo = ?', [TODO.failFast], async (tx, locked) => jobsFailFast(tx, locked));
    this.report(effects);
    return { more: ids.length > 0 };
  }

  /** Waiting jobs with a cancel request → cancelled; past wait_deadline → failed. */
  async endWaiting(reason: 'cancelled' | 'deadline'): Promise<Result> {
    const { db, events } = this.opts;
    const cancel = reason === 'cancelled';
    const ids = cancel ? await jobsSelectTodo(db, 'cancelWaiting', this.batch) : await jobsSelectWaitExpired(db, this.batch);
    const status: FinalStatus = cancel ? 'cancelled' : 'failed';
    let ended = 0;
    const effects = await this.ending(
      ids,
      cancel ? 'workflow_todo = ?' : 'wait_expiry <= NOW(3)',
      cancel ? [TODO.cancelWaiting] : [],
      async (tx, locked) => {
        ended = await jobsEndWaiting(tx, {
          ids: locked.map((l) => l.id),
          status,
          error: cancel ? 'cancelled while waiting (cancel_requested_at was set)' : 'wait deadline passed',
        });
        return jobsCountIntoParents(tx, locked.map((l) => ({ ...l, status })));
      },
    );
    if (ended > 0) events.emit('workflow:waiting-ended', { reason, count: ended });
    this.report(effects);
    return { more: ids.length > 0 };
  }

  async cancelPendingChildren(): Promise<Result> {
    const ids = await jobsSelectTodo(this.opts.db, 'cancelPendingChild', this.batch);
    let cancelled = 0;
    const effects = await this.ending(ids, 'workflow_todo = ?', [TODO.cancelPendingChild], async (tx, locked) => {
      cancelled = await jobsCancelPendingChildren(tx, locked.map((l) => l.id));
      return jobsCountIntoParents(tx, locked.map((l) => ({ ...l, status: 'cancelled' as const })));
    });
    if (cancelled > 0) this.opts.events.emit('workflow:cascaded', { kind: 'cancelled_pending', count: cancelled });
    this.report(effects);
    return { more: ids.length > 0 };
  }

  /** One level down per statement; the children then carry it further themselves. */
  async cascadeCancel(): Promise<Result> {
    const { db, events } = this.opts;
    const ids = await jobsSelectTodo(db, 'cascadeCancel', this.batch);
    if (ids.length === 0) return { more: false };
    const pushed = await jobsCascadeCancel(db, ids, CASCADE_CHUNK);
    if (pushed > 0) events.emit('workflow:cascaded', { kind: 'cancel', count: pushed });
    // A full chunk may have left children out: these parents are pushed again next pass.
    if (pushed < CASCADE_CHUNK) await jobsMarkCancelCascaded(db, ids);
    return { more: true };
  }

  /**
   * Paused is set (or cleared) on children that have not started; started ones (queued,
   * running) keep theirs, and the push passes through them to their own children (at most
   * PASS_THROUGH_DEPTH levels and CASCADE_CHUNK started children a level). A full chunk of
   * changed rows is pushed again at once (those rows no longer match, so it progresses);
   * otherwise the rows are marked done.
   */
  async cascadePause(): Promise<Result> {
    const { db, events } = this.opts;
    const rows = await jobsSelectPauseCascades(db, this.batch);
    const more = rows.length > 0;
    for (const paused of [true, false]) {
      const ids = rows.filter((r) => r.paused === paused).map((r) => r.id);
      if (ids.length === 0) continue;
      let frontier = ids;
      let full = false;
      for (let depth = 0; depth < PASS_THROUGH_DEPTH && frontier.length > 0; depth++) {
        const changed = await jobsCascadePause(db, { parents: frontier, paused, limit: CASCADE_CHUNK });
        if (changed > 0) events.emit('workflow:cascaded', { kind: 'pause', count: changed });
        full = changed === CASCADE_CHUNK;
        if (full) break;
        frontier = await jobsSelectStartedChildren(db, frontier, CASCADE_CHUNK);
      }
      if (!full) await jobsMarkPauseCascaded(db, ids, paused);
    }
    return { more };
  }

  /**
   * Sealed waiting parents with no child counted for a while: recount their children and
   * fix drifted counters (compare-and-set, so a child counted meanwhile wins). Each parent
   * is recounted again only once its counters moved or an hour passed.
   */
  async reconcile(): Promise<Result> {
    const { db, events } = this.opts;
    this.lastReconcile = performance.now();
    const parents = await jobsSelectStaleParents(db, { idleMs: this.opts.staleAfterMs ?? 300_000, afterId: this.reconcileAfter, limit: 50 });
    this.reconcileAfter = parents.length === 50 ? parents.at(-1)!.id : 0;
    const now = performance.now();
    for (const p of parents) {
      const counters = `${p.depsDone}/${p.depsFailed}`;
      const last = this.checked.get(p.id);
      if (last && last.counters === counters && now - last.at < RECHECK_MS) continue;
      this.remember(p.id, counters, now);
      const recount = await jobsCountEndedChildren(db, p.id);
      if (recount.done === p.depsDone && recount.failed === p.depsFailed) continue;
      if (!(await jobsFixCounters(db, p, recount))) continue;
      await jobsMarkChildrenCounted(db, p.id);
      events.emit('workflow:reconciled', { parentId: p.id, before: { done: p.depsDone, failed: p.depsFailed }, after: recount });
    }
    return { more: false };
  }

  private remember(id: number, counters: string, at: number): void {
    this.checked.delete(id);
    this.checked.set(id, { counters, at });
    // Oldest first (insertion order): forget them beyond the bound.
    while (this.checked.size > RECONCILED_MEMORY) this.checked.delete(this.checked.keys().next().value!);
  }

  /**
   * One transaction that locks the rows of `ids` still matching `condition`, ends them
   * (`end`) and counts them into their parents (inside `end`). Nothing locked: no write.
   */
  private async ending(
    ids: readonly number[],
    condition: string,
    params: unknown[],
    end: (tx: Executor, locked: LockedJob[]) => Promise<ParentEffects>,
  ): Promise<ParentEffects | undefined> {
    if (ids.length === 0) return undefined;
    return inTransaction(this.opts.db, 'workflowsEnd', async (tx) => {
      const locked = await jobsLockEnding(tx, { ids, condition, params });
      return locked.length === 0 ? undefined : end(tx, locked);
    });
  }

  private report(effects: ParentEffects | undefined): void {
    if (!effects) return;
    const { events } = this.opts;
    if (effects.released > 0) events.emit('workflow:released', { count: effects.released, by: 'child' });
    for (const f of effects.failedFast) events.emit('workflow:failed-fast', { parentId: f.id, childId: f.childId });
  }
}
