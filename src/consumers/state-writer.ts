import type { OpenClaim } from '../db/claim-session.js';
import type { Database } from '../db/database.js';
import { leasesSweepOwn } from '../db/queries/job-leases.js';
import { jobsFinish, outcomeGroupKey, type Outcome } from '../db/queries/jobs-outcome.js';
import { jobsMarkRunning, jobsRunningOf, type RunRef } from '../db/queries/jobs-run.js';
import {
  jobsCountIntoParents,
  jobsLockFinishingChildren,
  jobsSettleParents,
  type FinalStatus,
  type ParentEffects,
} from '../db/queries/workflows-counting.js';
import { inTransaction } from '../db/transaction.js';
import type { SluiceEvents } from '../events.js';
import { MAX_BATCH_BYTES } from '../limits.js';
import type { Logger } from '../observability/logger.js';
import type { HeldClaims } from '../room.js';
import { Batcher } from './batcher.js';
import { HeldClaim } from './held-claim.js';
import { clipText } from './outcome-encoding.js';

export interface StateWriterOptions {
  db: Database;
  worker: string;
  logger: Logger;
  /** Most rows one statement carries. */
  maxBatch?: number;
  /** Most bytes of results and errors one statement carries. */
  maxBatchBytes?: number;
  /**
   * Longest a `running` write waits. A run that ends sooner never needs it: its outcome
   * write carries the start too (queued → done in one statement).
   */
  startDelayMs?: number;
  /** Longest an outcome waits for company. */
  finishDelayMs?: number;
  /** Where releases and fail-fasts made by outcome writes are reported. */
  events?: SluiceEvents;
  /** Longest a claim handed over open stays open (SLUICE_CLAIM_HOLD_MS). */
  claimHoldMs?: number;
  /** How soon a lease left behind is swept (its claim is long over by then). */
  leaseSweepMs?: number;
}

/**
 * The runner's state writes, batched and fenced: `running` within `startDelayMs` of a
 * start, and the outcome after; a run shorter than that writes both in its outcome
 * statement. Under load one statement carries many jobs.
 *
 * Jobs of a claim held open (see held-claim.ts) are written by their claim instead:
 * claim and outcome in one row write, when it closes.
 */
export class StateWriter implements HeldClaims {
  private readonly starts: Batcher<RunRef, boolean>;
  private readonly finishes: Batcher<Outcome, void>;
  /** Jobs of claims held open (or closing), by id. */
  private readonly held = new Map<number, HeldClaim>();
  /** Claims held open now. */
  private heldClaims = 0;
  /** A sweep of this replica's leftover leases, when one may be left. */
  private leaseSweep: NodeJS.Timeout | undefined;

  constructor(private readonly opts: StateWriterOptions) {
    const maxBatch = opts.maxBatch ?? 1000;
    const onError = (what: string) => (err: Error, failures: number, size: number) =>
      opts.logger.warn({ err: err.message, failures, batch: size }, `${what} write failed; retrying`);
    this.starts = new Batcher({
      write: (runs) => this.writeStarts(runs),
      maxBatch,
      delayMs: opts.startDelayMs ?? 10,
      onError: onError('start'),
      onPoison: (run, err) => {
        opts.logger.error({ job_id: run.id, err: err.message }, 'start refused by the database; the run is dropped');
        return { settle: false };
      },
    });
    this.finishes = new Batcher({
      write: (outs) => this.writeFinishes(outs),
      maxBatch,
      maxBytes: opts.maxBatchBytes ?? MAX_BATCH_BYTES,
      sizeOf: outcomeBytes,
      delayMs: opts.finishDelayMs ?? 5,
      onError: onError('finish'),
      // The row still ends: failed, saying why its outcome could not be stored.
      onPoison: (o, err) => {
        opts.logger.error({ job_id: o.id, err: err.message }, 'outcome refused by the database; the job is failed instead');
        const failed: Outcome = { id: o.id, attempts: o.attempts, from: o.from, status: 'failed', error: clipText(`the outcome could not be stored: ${err.message}`) };
        if (o.started) Object.assign(failed, { started: true, startedAt: o.startedAt });
        return { replace: failed };
      },
    });
  }

  /** Writes waiting out a backoff try again now (the database is back). */
  retryNow(): void {
    this.starts.retryNow();
    this.finishes.retryNow();
  }

  /** ms the oldest unwritten state write has been failing (0 while writes succeed). */
  stuckForMs(): number {
    let held = 0;
    for (const h of this.held.values()) held = Math.max(held, h.failingForMs());
    return Math.max(this.starts.failingForMs(), this.finishes.failingForMs(), held);
  }

  /**
   * Records that a run started (batched). Resolves true once the row is `running` for this
   * run — or when the start was folded into the outcome — and false if the row was
   * cancelled or taken meanwhile. True at once for a job of a claim held open: its row is
   * locked by that claim, whose close writes the start.
   */
  markRunning(run: RunRef): Promise<boolean> | true {
    const h = this.held.get(run.id);
    if (h && !h.closed) {
      h.start(run);
      return true;
    }
    // Closing: the row is written when it commits; a write before would not find it.
    if (h) return h.settled.then(() => this.starts.add(run));
    return this.starts.add(run);
  }

  get holdMs(): number {
    return this.opts.claimHoldMs ?? 200;
  }

  canHoldMore(): boolean {
    return this.heldClaims < MAX_HELD_CLAIMS;
  }

  /** HeldClaims: a claim held open, its jobs' starts and outcomes written when it closes. */
  open({ claim, ids, batch, claimedAt }: { claim: OpenClaim; ids: readonly number[]; batch: number; claimedAt: number }): void {
    const h = new HeldClaim({
      db: this.opts.db,
      worker: this.opts.worker,
      claim,
      ids,
      batch,
      claimedAt,
      holdMs: this.holdMs,
      onClosed: (c) => this.claimClosed(c),
      passOn: (o) => void this.finish(o).catch(() => undefined),
    });
    for (const id of ids) this.held.set(id, h);
    this.heldClaims++;
  }

  /** Closes every held claim now; `handBack`: jobs not started stay pending. */
  async closeHeld(handBack: boolean): Promise<void> {
    await Promise.all([...new Set(this.held.values())].map((h) => h.close(handBack)));
  }

  /** The job's claim is held open or closing: its row does not say yet that it is ours. */
  isHeld(id: number): boolean {
    return this.held.has(id);
  }

  private claimClosed(claim: HeldClaim): void {
    for (const id of claim.ids) if (this.held.get(id) === claim) this.held.delete(id);
    this.heldClaims--;
  }

  /**
   * HeldClaims: a lease of this replica may be left behind (a write that failed may have
   * landed, and no claim holds its rows). It keeps every claim off those rows, so it is
   * swept soon, and again until a sweep succeeds. Nothing is sent while no lease write
   * fails.
   */
  leaseLeftBehind(): void {
    if (this.leaseSweep) return;
    this.leaseSweep = setTimeout(() => {
      const open = [...new Set([...this.held.values()].map((h) => h.batch))];
      leasesSweepOwn(this.opts.db, this.opts.worker, open).then(
        () => (this.leaseSweep = undefined),
        () => {
          this.leaseSweep = undefined;
          this.leaseLeftBehind();
        },
      );
    }, this.opts.leaseSweepMs ?? LEASE_SWEEP_MS);
    this.leaseSweep.unref();
  }

  /** Writes the waiting starts now (a run that must not start before its row says so). */
  flushStarts(): void {
    this.starts.flush();
  }

  /** Takes back a start not yet written, so the outcome write can carry it instead. */
  withdrawStart(run: RunRef): boolean {
    const h = this.held.get(run.id);
    if (h && !h.closed) return h.withdrawStart(run);
    return this.starts.withdraw((r) => r === run, true);
  }

  /** Records how a run ended; resolves once written (a late answer changes no row). */
  finish(outcome: Outcome): Promise<void> {
    const h = this.held.get(outcome.id);
    if (takesOutcome(h, outcome)) {
      h.finish(outcome);
      return h.written;
    }
    return this.finishLater(h, outcome);
  }

  /**
   * finish() for a caller that only logs a failure: the outcome of a job of a claim held
   * open costs no promise of its own.
   */
  record(outcome: Outcome, onFailure: (err: unknown, outcome: Outcome) => void): void {
    const h = this.held.get(outcome.id);
    if (takesOutcome(h, outcome)) h.finish(outcome);
    else this.finishLater(h, outcome).catch((err: unknown) => onFailure(err, outcome));
  }

  /** The batched write; after the close when the job's claim is closing (its row is written then). */
  private finishLater(h: HeldClaim | undefined, outcome: Outcome): Promise<void> {
    return h ? h.settled.then(() => this.finishes.add(outcome)) : this.finishes.add(outcome);
  }

  get pendingFinishes(): number {
    return this.finishes.pending;
  }

  /** Writes everything queued, giving up at `deadline` (epoch ms). */
  async drain(deadline: number): Promise<boolean> {
    await this.closeHeld(true);
    const [a, b] = await Promise.all([this.starts.drain(deadline), this.finishes.drain(deadline)]);
    return a && b;
  }

  close(): void {
    this.starts.close();
    this.finishes.close();
    clearTimeout(this.leaseSweep);
  }

  private async writeStarts(runs: RunRef[]): Promise<boolean[]> {
    const { db, worker } = this.opts;
    const moved = await jobsMarkRunning(db, worker, runs);
    if (moved === runs.length) return runs.map(() => true);
    // Some rows changed under us (cancelled, rescued) — or this is a retry of a write
    // that had succeeded: ask which runs the rows now say are ours.
    const ours = await jobsRunningOf(db, worker, runs);
    return runs.map((r) => ours.has(r.id));
  }

  private async writeFinishes(outcomes: Outcome[]): Promise<void[]> {
    // One statement per kind of outcome (usually one: all done).
    const groups = new Map<string, Outcome[]>();
    for (const o of outcomes) {
      const key = outcomeGroupKey(o);
      const list = groups.get(key);
      if (list) list.push(o);
      else groups.set(key, [o]);
    }
    let changed = 0;
    for (const group of groups.values()) changed += await this.writeGroup(group);
    // Fewer rows than outcomes: those runs had been rescued, cancelled or handed back
    // meanwhile (or this is a retry of a write that had landed). Their answer is dropped.
    if (changed < outcomes.length) this.opts.logger.debug({ discarded: outcomes.length - changed }, 'late answers discarded (fenced)');
    return outcomes.map(() => undefined);
  }

  /**
   * One group's write. A final state (done, failed, cancelled) is written for the jobs
   * without a parent first, in one statement, as always: a plain job costs nothing more.
   * Rows it did not match are children (or late answers): a transaction locks them, writes
   * them and counts them into their parents. A retry counts nothing and needs no
   * transaction; a park settles the parked job (it may be releasable or doomed already).
   */
  private async writeGroup(group: Outcome[]): Promise<number> {
    const { db, worker } = this.opts;
    const status = group[0]!.status;
    if (status === 'pending') return jobsFinish(db, { worker, outcomes: group });
    if (status === 'waiting') return this.park(group);
    const plain = await jobsFinish(db, { worker, outcomes: group, scope: 'plain' });
    if (plain === group.length) return plain;
    return plain + (await this.finishChildren(group, status));
  }

  private async finishChildren(group: Outcome[], status: FinalStatus): Promise<number> {
    const { db, worker } = this.opts;
    let effects: ParentEffects | undefined;
    const changed = await inTransaction(db, 'jobsFinishChildren', async (tx) => {
      const locked = await jobsLockFinishingChildren(tx, { worker, from: group[0]!.from, runs: group });
      if (locked.length === 0) return 0;
      const ids = new Set(locked.map((l) => l.id));
      const n = await jobsFinish(tx, { worker, outcomes: group.filter((o) => ids.has(o.id)), scope: 'children' });
      effects = await jobsCountIntoParents(tx, locked.map((l) => ({ ...l, status })));
      return n;
    });
    this.report(effects);
    return changed;
  }

  private async park(group: Outcome[]): Promise<number> {
    const { db, worker } = this.opts;
    let effects: ParentEffects | undefined;
    const changed = await inTransaction(db, 'jobsPark', async (tx) => {
      const n = await jobsFinish(tx, { worker, outcomes: group });
      // Its children may all have ended already (or one failed): release or fail it now.
      if (n > 0) effects = await jobsSettleParents(tx, { ids: group.map((o) => o.id), mayFail: group.map((o) => o.id) });
      return n;
    });
    this.report(effects);
    return changed;
  }

  /** Told once the transaction committed: a rolled-back one released nothing. */
  private report(effects: ParentEffects | undefined): void {
    const events = this.opts.events;
    if (!effects || !events) return;
    if (effects.released > 0) events.emit('workflow:released', { count: effects.released, by: 'child' });
    for (const f of effects.failedFast) events.emit('workflow:failed-fast', { parentId: f.id, childId: f.childId });
  }
}

/** Claims held at once, at most: each holds a connection of its own. */
const MAX_HELD_CLAIMS = 8;

/** How soon a replica sweeps a lease it may have left behind (older than leasesSweepOwn's 5 s). */
const LEASE_SWEEP_MS = 6000;

/** What an outcome adds to its statement: its texts as JSON strings escape them (quotes double). */
function outcomeBytes(o: Outcome): number {
  const text = (o.result?.length ?? 0) + (o.error?.length ?? 0);
  // Up to 3 UTF-8 bytes per UTF-16 unit, and escaping doubles quotes and backslashes:
  // exact sizing would cost a pass over every result; this bound only matters for big ones.
  return 64 + (text < 4096 ? text * 3 : 2 * Buffer.byteLength(o.result ?? '') + 2 * Buffer.byteLength(o.error ?? ''));
}

/** A claim held open takes the outcome of a run it started (from `queued`): its close writes it. */
function takesOutcome(h: HeldClaim | undefined, outcome: Outcome): h is HeldClaim {
  return h !== undefined && !h.closed && outcome.from === 'queued';
}
