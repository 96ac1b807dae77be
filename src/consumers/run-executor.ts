import type { Database } from '../db/database.js';
import { jobsLoadPayload } from '../db/queries/jobs-claim.js';
import type { Outcome } from '../db/queries/jobs-outcome.js';
import type { RunRef } from '../db/queries/jobs-run.js';
import { coerceError } from '../errors.js';
import type { SluiceEventMap, SluiceEvents } from '../events.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { PAYLOAD_BUDGET_BYTES } from '../limits.js';
import type { Logger } from '../observability/logger.js';
import { ByteBudget } from './byte-budget.js';
import { DeadlineTimers } from './deadline-timers.js';
import type { HandBacks } from './hand-backs.js';
import type { HeldRun, HeldRuns } from './held-runs.js';
import { foldStart, outcomeOf, refusalOf } from './outcome-policy.js';
import { runInContext, type RunContextDeps } from './run-context.js';
import type { StateWriter } from './state-writer.js';

/** Weight of the newest run in typicalRunMs: one slow run among twenty quick ones shows. */
const RUN_TIME_WEIGHT = 0.05;

export interface RunExecutorOptions {
  db: Database;
  worker: string;
  registry: HandlerRegistry;
  writer: StateWriter;
  logger: Logger;
  events: SluiceEvents;
  held: HeldRuns;
  handBacks: HandBacks;
  /** Told when each run() ends, whatever the outcome: the runner counts its runs. */
  onEnded?: () => void;
}

/**
 * One run from its slot to its outcome: refused before start, payload read when deferred,
 * `running` recorded (batched, or first when the run must not start unrecorded), the
 * handler called, and the outcome handed to the writer — folded with the start when the
 * run ended before its `running` write went out, dropped when the row was taken away.
 */
export class RunExecutor {
  /** Bytes of deferred payloads held by runs: large payloads wait for room. */
  private readonly payloadBudget = new ByteBudget(PAYLOAD_BUDGET_BYTES);
  /** How long runs take lately (a moving average; undefined before the first): whether a claim can wait for its jobs to end. */
  typicalRunMs: number | undefined;
  private readonly context: RunContextDeps;

  constructor(private readonly opts: RunExecutorOptions) {
    const { db, worker, registry, logger, held } = opts;
    const deadlines = new DeadlineTimers<HeldRun>((entry) => held.interrupt(entry, 'timeout'));
    this.context = { db, worker, registry, logger, held, deadlines };
  }

  /** Never throws: a run that fails unexpectedly is logged, and handed back if it never started. */
  async run(entry: HeldRun, limiterWaitMs: number): Promise<void> {
    const { job } = entry;
    const { writer, held } = this.opts;
    let heldBytes = 0;
    try {
      const refusal = refusalOf(job);
      if (refusal) {
        this.failBeforeStart(entry, refusal);
        return;
      }
      if (job.payloadDeferred) {
        // Large payloads are read now, not at claim, and only while the budget has room.
        heldBytes = job.payloadBytes;
        await this.payloadBudget.acquire(heldBytes);
        const loaded = await jobsLoadPayload(this.opts.db, this.opts.worker, job);
        if (!loaded.found) {
          held.forget(entry); // no longer ours: never started here
          return;
        }
        job.payload = loaded.payload;
      }
      held.setState(entry, 'running');
      entry.startedAt = performance.now();
      const attempt = job.attempts + 1;
      // The claim made this worker the holder; the `running` write follows batched. If it
      // finds the row taken (cancelled, rescued), the run is dropped.
      const run: RunRef = { id: job.id, attempts: job.attempts };
      const marked = writer.markRunning(run);
      const started = marked === true ? marked : marked.catch(() => false);
      // Claimed before: perhaps by a process this very job killed before its start was
      // written — record the attempt first, so such a job uses attempts up, not loops. Or
      // claimed before this replica went stale (a claim still being handed over then):
      // the leader may have given it to another replica, and only the fenced write can tell.
      if (job.reclaimed || held.claimedBeforeAbandon(job)) {
        writer.flushStarts();
        if (!(await started)) {
          held.forget(entry); // the row was taken meanwhile: never started here
          return;
        }
        entry.startedAt = performance.now();
      }
      if (started !== true) {
        void started.then((ours) => {
          if (!ours) held.interrupt(entry, 'lost');
        });
      }
      this.opts.events.emit('job:started', { job, attempt, limiterWaitMs });
      let settlement = await runInContext(entry, attempt, this.context);
      // An enqueue the handler did not await still decides whether the job parks.
      if (entry.enqueues) await Promise.allSettled([...entry.enqueues]);
      if (settlement.kind === 'done' && entry.parked) settlement = { ...settlement, parked: true };
      const outcome = outcomeOf(job, attempt, settlement, this.opts.worker);
      const durationMs = performance.now() - entry.startedAt;
      this.typicalRunMs = this.typicalRunMs === undefined ? durationMs : this.typicalRunMs + RUN_TIME_WEIGHT * (durationMs - this.typicalRunMs);
      held.forget(entry);
      if (heldBytes > 0) job.payload = undefined; // the handler is done with it
      let write = outcome.write;
      if (write) {
        if (writer.withdrawStart(run)) {
          write = foldStart(write, job.attempts, entry.startedAt); // ended before its `running` write went out
        } else if (!(await started)) {
          write = undefined; // the row was taken from this run: its answer is dropped
        }
      }
      if (write) this.record(write);
      const kind = write ? outcome.kind : 'lost';
      const finished: SluiceEventMap['job:finished'] = { job, attempt, outcome: kind, durationMs };
      if (outcome.error) finished.error = outcome.error;
      this.opts.events.emit('job:finished', finished);
    } catch (err) {
      // Never let one job take the loop down. A run that never started is handed back.
      this.opts.logger.error({ job_id: job.id, err: coerceError(err).message }, 'job run failed unexpectedly');
      const neverStarted = entry.state === 'starting';
      held.forget(entry);
      if (neverStarted) void this.opts.handBacks.release([job.id], 'error');
    } finally {
      if (heldBytes > 0) this.payloadBudget.release(heldBytes);
      this.opts.onEnded?.();
    }
  }

  /** Ends a claimed job that cannot run at all: failed, attempt not counted, no handler called. */
  private failBeforeStart(entry: HeldRun, error: string): void {
    const { job } = entry;
    this.opts.held.forget(entry);
    this.record({ id: job.id, attempts: job.attempts, from: 'queued', status: 'failed', error });
    this.opts.events.emit('job:refused', { job, error });
  }

  /** Hands an outcome to the batched writer; a write that fails for good is logged, not thrown. */
  private record(write: Outcome): void {
    this.opts.writer.record(write, this.notWritten);
  }

  private readonly notWritten = (err: unknown, write: Outcome): void => {
    this.opts.logger.error({ job_id: write.id, err: coerceError(err).message }, 'outcome not written');
  };
}
