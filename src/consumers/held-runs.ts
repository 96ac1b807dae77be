import type { HeldJobChange } from '../db/queries/jobs-control.js';
import type { RunRef } from '../db/queries/jobs-run.js';
import type { RunnableJob } from '../room.js';
import type { Interruption, Settlement } from './outcome-policy.js';

/**
 * queued: admitted, waiting in the channel or for a token or a slot; starting: given a slot,
 * run() not at the handler yet; running: the handler was called; settled: over here.
 */
export type RunState = 'queued' | 'starting' | 'running' | 'settled';

/** A claimed job this replica holds, from its admission until its run settles. */
export interface HeldRun {
  job: RunnableJob;
  state: RunState;
  /** Made on first use of ctx.signal, or by an interruption: a no-op job never needs one. */
  controller?: AbortController;
  /** Its deadline timer, armed once the run outlives the tick it started in. */
  timer?: NodeJS.Timeout;
  /** performance.now() past which the run is dead. */
  deadline?: number;
  /** Set when an interruption arrives between the slot and the call of run(). */
  pendingInterruption?: Interruption;
  settle?: (s: Settlement) => void;
  startedAt?: number;
  limiterWaitMs?: number;
  /** ctx.enqueue calls in flight: the outcome waits for them. */
  enqueues?: Set<Promise<unknown>>;
  /** The handler enqueued children with `wait`: its answer parks the job. */
  parked?: boolean;
}

/**
 * The runs this replica holds, by job id, and what it takes to end each one exactly once:
 * the states above, interruptions, and the count and payload bytes of the queued ones
 * (kept as running totals: the publisher asks after every claim).
 */
export class HeldRuns {
  private readonly held = new Map<number, HeldRun>();
  private queuedJobs = 0;
  private queuedBytes = 0;
  /** When abandon() last ran: a job claimed before then may have been given away. */
  private abandonedAt = -Infinity;

  /** Claimed jobs not started yet, wherever they wait (channel, token stage, ready list). */
  get queuedCount(): number {
    return this.queuedJobs;
  }

  /** Payload bytes the claimed, not started jobs carry (deferred payloads are not loaded yet). */
  get queuedPayloadBytes(): number {
    return this.queuedBytes;
  }

  get runningCount(): number {
    let n = 0;
    for (const e of this.held.values()) if (e.state === 'starting' || e.state === 'running') n++;
    return n;
  }

  /** Runs not settled (queued or running), for the cancel/ownership check. */
  refs(): RunRef[] {
    return [...this.held.values()].filter((e) => e.state !== 'settled').map((e) => ({ id: e.job.id, attempts: e.job.attempts }));
  }

  get(jobId: number): HeldRun | undefined {
    return this.held.get(jobId);
  }

  queued(): HeldRun[] {
    return [...this.held.values()].filter((e) => e.state === 'queued');
  }

  /**
   * Registers a claimed job before it enters the channel. False when this worker already
   * holds the same run (a row rescued and re-claimed while its first claim still waits).
   */
  admit(job: RunnableJob): boolean {
    const existing = this.held.get(job.id);
    if (existing && existing.job.attempts === job.attempts) return false;
    if (existing) this.interrupt(existing, 'lost');
    this.held.set(job.id, { job, state: 'queued' });
    this.queuedJobs++;
    if (!job.payloadDeferred) this.queuedBytes += job.payloadBytes;
    return true;
  }

  /**
   * Applies what the held-jobs check found: rows taken away are interrupted, cancel
   * requests interrupt running runs. Queued runs cancelled are forgotten and returned: the
   * caller takes them out of the channel and records them.
   */
  applyChanges(changes: readonly HeldJobChange[]): HeldRun[] {
    const cancelledQueued: HeldRun[] = [];
    for (const change of changes) {
      const entry = this.held.get(change.id);
      if (!entry || entry.state === 'settled') continue;
      if (!change.stillOurs) {
        this.interrupt(entry, 'lost');
      } else if (change.cancelRequested) {
        if (entry.state === 'queued') {
          this.setState(entry, 'settled');
          this.held.delete(entry.job.id);
          cancelledQueued.push(entry);
        } else {
          this.interrupt(entry, 'cancel');
        }
      }
    }
    return cancelledQueued;
  }

  /**
   * This replica may have been declared dead: every started run is interrupted as stale;
   * the queued ones are returned for the caller to hand back.
   */
  abandon(): HeldRun[] {
    this.abandonedAt = performance.now();
    this.interruptStarted('stale');
    return this.queued();
  }

  /** Claimed before the last abandon(): the leader may have given it to another replica. */
  claimedBeforeAbandon(job: RunnableJob): boolean {
    return job.claimedAt <= this.abandonedAt;
  }

  /** Interrupts every run past the queue (starting or running); queued ones are left to the caller. */
  interruptStarted(why: Interruption): void {
    for (const entry of [...this.held.values()]) {
      if (entry.state === 'starting' || entry.state === 'running') this.interrupt(entry, why);
    }
  }

  /**
   * A queued run is dropped (nothing to abort); a starting one keeps the reason until its
   * handler would be called; a running one is aborted and settled at once, so its slot is
   * freed even while the handler ignores its signal.
   */
  interrupt(entry: HeldRun, why: Interruption): void {
    if (entry.state === 'settled') return;
    if (entry.state === 'queued') {
      this.setState(entry, 'settled');
      this.held.delete(entry.job.id);
      return;
    }
    if (entry.state === 'starting') {
      entry.pendingInterruption ??= why;
      return;
    }
    (entry.controller ??= new AbortController()).abort(new InterruptedError(why));
    entry.settle?.({ kind: why });
  }

  setState(entry: HeldRun, state: RunState): void {
    if (entry.state === 'queued' && state !== 'queued') {
      this.queuedJobs--;
      if (!entry.job.payloadDeferred) this.queuedBytes -= entry.job.payloadBytes;
    }
    entry.state = state;
  }

  /** Settles a run and lets go of it, unless a newer claim of the same job replaced it. */
  forget(entry: HeldRun): void {
    this.setState(entry, 'settled');
    if (this.held.get(entry.job.id) === entry) this.held.delete(entry.job.id);
  }
}

/** The reason an AbortSignal carries when sluice stops a run. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
  constructor(readonly why: Interruption) {
    super(
      why === 'timeout'
        ? 'job timed out'
        : why === 'cancel'
          ? 'job cancelled'
          : why === 'shutdown'
            ? 'worker shutting down'
            : why === 'stale'
              ? 'worker lost contact with the database'
              : 'job was taken from this worker',
    );
  }
}
