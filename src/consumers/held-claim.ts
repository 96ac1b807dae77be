/**
 * A claim held open while its jobs run, so each row is written once instead of twice.
 *
 * The claim locked its rows (`FOR UPDATE SKIP LOCKED`) and did not write them; a lease row
 * naming them was committed before any of them could start. The runs go on, their starts
 * and outcomes collected here, and the claim closes when all have ended or after
 * SLUICE_CLAIM_HOLD_MS, whichever comes first: one transaction writes each ended run's
 * claim and outcome together (`pending` → `done`), `running` for runs still going and
 * `queued` for jobs not started, deletes the lease, and commits.
 *
 * Only plain, quick jobs get here (the publisher's `holdable`, the runner's `endsWithin`):
 * the others' writes are not only their own row's. A run that did not end `done` is
 * written as claimed (`running`) at the close, and its outcome goes the usual way.
 *
 * A close that fails (connection lost, a row the server refuses) rolls back: the rows are
 * pending again, and the lease keeps every claim off them. They are then written as
 * claimed the usual way, fenced, retried with backoff while the database is away (that
 * time counts as the writer being stuck, for /healthz), and the outcomes follow through
 * the batched writer, which retries them and splits out a row the database refuses.
 */
import { errorBackoffMs } from '../backoff.js';
import type { OpenClaim } from '../db/claim-session.js';
import type { Database, Executor } from '../db/database.js';
import { leaseDelete } from '../db/queries/job-leases.js';
import { jobsMarkQueued } from '../db/queries/jobs-claim.js';
import { jobsFinishHeld, jobsMarkRunningHeld } from '../db/queries/jobs-held-claim.js';
import type { Outcome } from '../db/queries/jobs-outcome.js';
import type { RunRef } from '../db/queries/jobs-run.js';
import { inTransaction } from '../db/transaction.js';

export interface HeldClaimOptions {
  db: Database;
  worker: string;
  claim: OpenClaim;
  ids: readonly number[];
  /** The lease's number. */
  batch: number;
  /** performance.now() when the claim began. */
  claimedAt: number;
  holdMs: number;
  /** Told once closed: later writes of its jobs go the usual way. */
  onClosed: (claim: HeldClaim) => void;
  /** Outcomes not written by the close: written the usual way once the rows are ours. */
  passOn: (o: Outcome) => void;
}

/**
 * Result text one close carries at most (up to 3 MiB as UTF-8, within the 8 MiB
 * max_allowed_packet docs/limits.md asks for): runs past it are written running at the
 * close and their outcomes go through the batched writer, which splits by bytes.
 */
export const CLOSE_RESULT_CHARS = 1024 * 1024;

export class HeldClaim {
  closed = false;
  /** Runs started and not ended, by job id. */
  private readonly starts = new Map<number, RunRef>();
  /** How the ended runs ended, by job id. */
  private readonly ended = new Map<number, Outcome>();
  private readonly timer: NodeJS.Timeout;
  private settle$: () => void = () => undefined;
  private written$: () => void = () => undefined;
  /** The runner let its jobs go: those not started stay pending. */
  private handingBack = false;
  /** performance.now() since the close's writes have been failing. */
  private failingSince: number | undefined;
  /** Resolves once the close committed or fell back: writes of its jobs wait for it. */
  readonly settled = new Promise<void>((r) => (this.settle$ = r));
  /**
   * Resolves once every start and outcome it took is written or passed on: one promise
   * for all its jobs, none of their own (a claim holds hundreds).
   */
  readonly written = new Promise<void>((r) => (this.written$ = r));

  constructor(private readonly opts: HeldClaimOptions) {
    this.timer = setTimeout(() => void this.close(), opts.holdMs);
  }

  get batch(): number {
    return this.opts.batch;
  }

  get ids(): readonly number[] {
    return this.opts.ids;
  }

  /** ms this close has been failing to write (0 while it is not). */
  failingForMs(): number {
    return this.failingSince === undefined ? 0 : performance.now() - this.failingSince;
  }

  /**
   * A run started: the close writes its row, `running` if it has not ended by then. The
   * row is locked by this claim's transaction, so the run is ours: nothing to wait for.
   */
  start(run: RunRef): void {
    this.starts.set(run.id, run);
  }

  /** The run ended before the close: its outcome carries the start (see StateWriter.withdrawStart). */
  withdrawStart(run: RunRef): boolean {
    return this.starts.delete(run.id);
  }

  /** Records how a run ended (see `written`); the last one closes the claim. */
  finish(outcome: Outcome): void {
    this.ended.set(outcome.id, outcome);
    if (this.ended.size === this.opts.ids.length) void this.close();
  }

  /** Writes what happened and commits. `handBack`: jobs not started stay pending. Never throws. */
  async close(handBack = false): Promise<void> {
    if (handBack) this.handingBack = true;
    if (this.closed) return this.settled;
    this.closed = true;
    clearTimeout(this.timer);
    const { claim, worker, claimedAt } = this.opts;
    const done: Outcome[] = [];
    const other: Outcome[] = [];
    let resultChars = 0;
    for (const o of this.ended.values()) {
      const chars = o.result?.length ?? 0;
      if (o.status === 'done' && o.started && resultChars + chars <= CLOSE_RESULT_CHARS) {
        done.push(o);
        resultChars += chars;
      } else other.push(o);
    }
    const runningIds = [...this.starts.keys(), ...other.filter((o) => o.started).map((o) => o.id)];
    const taken = new Set([...runningIds, ...done.map((o) => o.id)]);
    const queued = handBack ? [] : this.opts.ids.filter((id) => !taken.has(id));
    let fellBack = false;
    try {
      await jobsFinishHeld(claim.tx, worker, done, performance.now() - claimedAt);
      await jobsMarkRunningHeld(claim.tx, worker, runningIds);
      if (queued.length > 0) await jobsMarkQueued(claim.tx, worker, queued);
      // The lease goes in the same commit as the writes it stood for.
      await leaseDelete(claim.tx, worker, this.opts.batch);
      await claim.commit();
    } catch {
      await claim.rollback();
      fellBack = true;
      await this.writeAsClaimed([...runningIds, ...done.map((o) => o.id)], queued);
    } finally {
      this.opts.onClosed(this);
      this.settle$();
    }
    for (const o of fellBack ? [...done, ...other] : other) {
      // The row now says running (the attempt counted) or queued: the outcome goes on from there.
      this.opts.passOn(o.started ? { ...o, attempts: o.attempts + 1, from: 'running', started: undefined, startedAt: undefined } : o);
    }
    this.written$();
  }

  /** The fallback: rows written as claimed on the pool, until it answers. */
  private async writeAsClaimed(startedIds: readonly number[], queued: readonly number[]): Promise<void> {
    const { db, worker } = this.opts;
    const write = async (tx: Executor): Promise<void> => {
      await jobsMarkRunningHeld(tx, worker, startedIds);
      // The runner may have let them go meanwhile (it gave its jobs up while the database was away).
      if (queued.length > 0 && !this.handingBack) await jobsMarkQueued(tx, worker, queued);
      await leaseDelete(tx, worker, this.opts.batch);
    };
    this.failingSince = performance.now();
    for (let failures = 1; ; failures++) {
      try {
        await inTransaction(db, 'jobsClaimHeldFallback', write);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, errorBackoffMs(failures, { maxMs: 2000 })));
      }
    }
    this.failingSince = undefined;
  }
}
