// Over 300 lines: the loop, held-run bookkeeping and the run context still share this file;
// splitting them is open work (issue #12). The outcome policy is already its own module.
import { AsyncLocalStorage } from 'node:async_hooks';
import pLimit, { type LimitFunction } from 'p-limit';
import { errorBackoffMs } from '../backoff.js';
import type { Channel } from '../channel.js';
import type { Database } from '../db/database.js';
import { jobsLoadPayload } from '../db/queries/jobs-claim.js';
import type { HeldJobChange } from '../db/queries/jobs-control.js';
import { jobsReleaseQueued, type Outcome } from '../db/queries/jobs-outcome.js';
import type { RunRef } from '../db/queries/jobs-run.js';
import { coerceError, PermanentJobError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { JobContext, JobInfo } from '../handlers/types.js';
import { MAX_ATTEMPTS_BEFORE_RUN, MAX_PAYLOAD_BYTES, PAYLOAD_BUDGET_BYTES } from '../limits.js';
import type { Logger } from '../observability/logger.js';
import type { Room, RunnableJob } from '../room.js';
import { ByteBudget } from './byte-budget.js';
import { outcomeOf, type Interruption, type Settlement } from './outcome-policy.js';
import { childrenOf } from '../workflows/children.js';
import { enqueueJobs } from '../workflows/enqueue.js';
import { ProgressReporter } from './progress-reporter.js';
import type { RateLimiter } from './rate-limiter.js';
import type { StateWriter } from './state-writer.js';

// The job type crosses the channel, so it lives on the channel side; consumers still import it from here.
export type { RunnableJob } from '../room.js';

export interface JobRunnerOptions {
  channel: Channel<RunnableJob>;
  db: Database;
  worker: string;
  concurrency: number;
  registry: HandlerRegistry;
  writer: StateWriter;
  limiter: RateLimiter;
  logger: Logger;
  events: SluiceEvents;
  /** Called after a round of starts: claimed jobs left the queue, so the publisher may claim more. */
  onStarted?: () => void;
  /**
   * False while a start could not be recorded (the database is away): claimed jobs then
   * wait instead of running unrecorded, where the leader could give them to another replica.
   */
  canStart?: () => boolean;
}

/** The job whose handler code is running now: names the culprit of an uncaught exception. */
const currentJob = new AsyncLocalStorage<number>();

/** The id of the job whose handler (or a callback it scheduled) is executing, if any. */
export function currentJobId(): number | undefined {
  return currentJob.getStore();
}

interface Entry {
  job: RunnableJob;
  state: 'queued' | 'starting' | 'running' | 'settled';
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
 * The consumer: takes claimed jobs from the channel, waits for a rate token (bottleneck)
 * and a concurrency slot (p-limit), calls the handler, and records `running` and the
 * outcome through the batched state writer (one write for both when the run is short).
 * Every claimed job ends in exactly one of: outcome written, handed back, or dropped
 * because the row was taken from this worker.
 *
 * A slot is freed when the run settles — including by timeout or cancel while a handler
 * ignores its signal — so a stuck handler cannot starve the replica.
 */
export class JobRunner implements Room {
  private readonly held = new Map<number, Entry>();
  private readonly limit: LimitFunction;
  private slotWaiters: Array<() => void> = [];
  private tokenWaiters: Array<() => void> = [];
  /** Jobs granted a rate token, waiting for a slot. */
  private ready: Entry[] = [];
  private stop$: () => void = () => undefined;
  private stopped$: Promise<boolean> = Promise.resolve(true);
  /** Epoch ms after which hand-backs stop retrying (set by stop()). */
  private giveUpAt = Infinity;
  private readonly handBacks = new Set<Promise<boolean>>();
  /** run() calls in progress: a stop waits until each has passed its outcome on. */
  private readonly runs = new Set<Promise<void>>();
  private readonly stopped = new Promise<void>((r) => (this.stop$ = r));
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Bytes of deferred payloads held by runs: large payloads wait for room. */
  private readonly payloadBudget = new ByteBudget(PAYLOAD_BUDGET_BYTES);
  /** Bytes of the payloads claimed jobs carry while they wait (bounds the prefetch's memory). */
  private queuedBytes = 0;
  /** Runs started in this tick whose deadline timer is not armed yet. */
  private unarmed: Entry[] = [];
  /** When abandonAll() last ran: a job claimed before then may have been given away. */
  private abandonedAt = -Infinity;
  /** Entries in state 'queued' (kept as a count: the publisher asks after every claim). */
  private queuedJobs = 0;
  private roomFreed: (() => void) | undefined;

  constructor(private readonly opts: JobRunnerOptions) {
    this.limit = pLimit(opts.concurrency);
  }

  /** Jobs this replica holds (queued or running), for the cancel/ownership check. */
  heldRuns(): RunRef[] {
    return [...this.held.values()].filter((e) => e.state !== 'settled').map((e) => ({ id: e.job.id, attempts: e.job.attempts }));
  }

  get runningCount(): number {
    let n = 0;
    for (const e of this.held.values()) if (e.state === 'starting' || e.state === 'running') n++;
    return n;
  }

  /** Claimed jobs not started yet, wherever they wait (channel, token stage, ready list). */
  get queuedCount(): number {
    return this.queuedJobs;
  }

  /** Payload bytes the claimed, not started jobs carry. */
  get queuedPayloadBytes(): number {
    return this.queuedBytes;
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

  /** Room: `listener` (the publisher) runs after each round of starts, with onStarted. */
  onRoomFreed(listener: () => void): void {
    this.roomFreed = listener;
  }

  start(): void {
    this.loop ??= this.consume().catch((err: unknown) => {
      this.opts.logger.error({ err: coerceError(err).message }, 'job runner loop crashed');
    });
  }

  /** Applies what the held-jobs check found: cancel requests and rows taken away. */
  async applyChanges(changes: readonly HeldJobChange[]): Promise<void> {
    const cancelledQueued: Outcome[] = [];
    for (const change of changes) {
      const entry = this.held.get(change.id);
      if (!entry || entry.state === 'settled') continue;
      if (!change.stillOurs) {
        this.interrupt(entry, 'lost');
      } else if (change.cancelRequested) {
        if (entry.state === 'queued') {
          this.setState(entry, 'settled');
          this.held.delete(entry.job.id);
          this.opts.channel.remove((j) => j === entry.job);
          cancelledQueued.push({
            id: entry.job.id,
            attempts: entry.job.attempts,
            from: 'queued',
            status: 'cancelled',
            error: 'cancelled before it started (cancel_requested_at was set)',
          });
          this.opts.events.emit('job:cancelled-before-start', { job: entry.job });
        } else {
          this.interrupt(entry, 'cancel');
        }
      }
    }
    await Promise.all(cancelledQueued.map((o) => this.opts.writer.finish(o)));
  }

  /**
   * Gives up everything it holds: used when this replica may have been declared dead
   * (heartbeats failing), so the leader may hand its jobs to others — no job may run here
   * and there at once. Runs are aborted and handed back without counting the attempt;
   * claimed jobs not yet started are handed back too, since a run starts before its
   * `running` write lands and could not tell in time that the row was given away. Both
   * writes are fenced and retried until the database answers (a no-op if the leader got
   * there first); the replica claims afresh once it answers. Outcomes of runs that had
   * already finished stay in the writer and are written when the database is back.
   */
  abandonAll(): void {
    this.abandonedAt = performance.now();
    for (const entry of [...this.held.values()]) if (entry.state !== 'queued') this.interrupt(entry, 'stale');
    this.opts.channel.drain();
    this.ready = [];
    for (const w of this.tokenWaiters.splice(0)) w(); // the token stage may wait for room in `ready`
    void this.handBack(this.queuedEntries(), 'stale');
  }

  /**
   * Graceful stop: no more starts; queued jobs are handed back at once; running jobs get
   * `graceMs` to finish, then are aborted and handed back without counting the attempt.
   * Hand-backs are retried through a database blip for up to `handBackMs` past the grace.
   * Resolves true when every claimed job not run here was handed back.
   */
  async stop(graceMs: number, handBackMs = 10_000): Promise<boolean> {
    if (this.stopping) return this.stopped$;
    this.stopping = true;
    this.giveUpAt = Date.now() + graceMs + handBackMs;
    this.stopped$ = this.doStop(graceMs);
    return this.stopped$;
  }

  private async doStop(graceMs: number): Promise<boolean> {
    this.stop$();
    this.opts.channel.close();
    this.opts.channel.drain();
    this.ready = [];
    void this.handBack(this.queuedEntries(), 'shutdown');
    this.wakeSlotWaiters();
    for (const w of this.tokenWaiters.splice(0)) w();
    const deadline = Date.now() + graceMs;
    while (this.runningCount > 0 && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.slotWaiters.push(r);
        setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now())));
      });
    }
    for (const entry of this.held.values()) {
      if (entry.state === 'starting' || entry.state === 'running') this.interrupt(entry, 'shutdown');
    }
    // Running entries settle on interruption at once; starting ones when run() begins. Each
    // run() then hands its outcome to the writer, which the caller drains next.
    await Promise.race([Promise.all([...this.runs]), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.loop;
    // Anything admitted while the stop began (a claim that was in flight).
    void this.handBack(this.queuedEntries(), 'shutdown');
    const results = await Promise.all([...this.handBacks]);
    return results.every(Boolean) && this.runningCount === 0;
  }

  private queuedEntries(): Entry[] {
    return [...this.held.values()].filter((e) => e.state === 'queued');
  }

  /**
   * Releases claimed, not started jobs, retrying through a database blip until it lands
   * or `giveUpAt` passes (only a stop sets it). Resolves false if it gave up: the jobs stay
   * `queued` under this worker id, and the worker row must stay too, so the leader's
   * dead-replica sweep returns them.
   */
  private handBack(entries: Entry[], reason: 'shutdown' | 'stale' | 'error'): Promise<boolean> {
    for (const e of entries) this.forget(e);
    if (entries.length === 0) return Promise.resolve(true);
    const ids = entries.map((e) => e.job.id);
    const attempt = async (): Promise<boolean> => {
      for (let failures = 1; ; failures++) {
        try {
          const n = await jobsReleaseQueued(this.opts.db, this.opts.worker, ids);
          this.opts.events.emit('jobs:handed-back', { count: n, reason });
          return true;
        } catch (err) {
          const giveUp = Date.now() >= this.giveUpAt;
          if (failures <= 3 || giveUp) this.opts.logger.warn({ err: coerceError(err).message, jobs: ids.length, failures }, 'could not hand queued jobs back');
          if (giveUp) return false;
          await new Promise((r) => setTimeout(r, Math.min(errorBackoffMs(failures, { maxMs: 2000 }), Math.max(1, this.giveUpAt - Date.now()))));
        }
      }
    };
    const p = attempt();
    this.handBacks.add(p);
    void p.finally(() => this.handBacks.delete(p));
    return p;
  }

  private freeSlots(): number {
    return this.opts.concurrency - this.limit.activeCount - this.limit.pendingCount;
  }

  /**
   * Two stages, so the rate limiter's latency (bottleneck yields a timer tick per
   * operation) overlaps with running jobs: `takeTokens` moves jobs from the channel to
   * `ready` once the bucket grants them tokens, at most one round of slots ahead;
   * `startReady` starts them as slots free.
   */
  private async consume(): Promise<void> {
    await Promise.all([this.takeTokens(), this.startReady()]);
  }

  private async takeTokens(): Promise<void> {
    const { channel, limiter } = this.opts;
    // Tokens are taken at most one round of slots ahead, or 10 ms of the rate when that is
    // more: the runner never waits on the limiter while tokens are plentiful, and granted
    // starts never pile up beyond what the bucket would have allowed a moment later.
    const ahead = Math.max(this.opts.concurrency, Math.min(limiter.batchHint, channel.capacity));
    let waiting: Entry[] = [];
    for (;;) {
      while (this.ready.length >= ahead && !this.stopping) await new Promise<void>((r) => this.tokenWaiters.push(r));
      if (this.stopping) return;
      if (waiting.length === 0) {
        const first = await channel.receive();
        if (first === undefined || this.stopping) return;
        const batch = [first];
        while (batch.length < ahead - this.ready.length && channel.size > 0) batch.push((await channel.receive())!);
        waiting = batch.map((job) => this.held.get(job.id)).filter((e): e is Entry => e !== undefined && e.state === 'queued');
        if (waiting.length === 0) continue;
      }
      const waitStart = performance.now();
      const granted = await Promise.race([limiter.take(Math.min(waiting.length, ahead - this.ready.length)), this.stopped.then(() => 0)]);
      const waitedMs = performance.now() - waitStart;
      const go = waiting.splice(0, granted).filter((e) => e.state === 'queued'); // cancelled meanwhile
      for (const e of go) e.limiterWaitMs = waitedMs;
      this.ready.push(...go);
      this.wakeSlotWaiters();
    }
  }

  private async startReady(): Promise<void> {
    for (;;) {
      while (!this.stopping) {
        if (this.freeSlots() > 0 && this.ready.length > 0) {
          if (this.opts.canStart?.() ?? true) break;
          // The database is away: a start now could not be recorded. Look again shortly.
          await new Promise<void>((r) => setTimeout(r, 50));
          continue;
        }
        await new Promise<void>((r) => this.slotWaiters.push(r));
      }
      if (this.stopping) return;
      const entries = this.ready.splice(0, this.freeSlots());
      for (const w of this.tokenWaiters.splice(0)) w();
      for (const entry of entries) {
        if (entry.state !== 'queued') continue; // cancelled or handed back meanwhile
        this.setState(entry, 'starting');
        // p-limit releases its slot a few ticks after run() settles: wake slot waiters
        // only then, or they would see the slot still taken and sleep for good.
        const run = this.limit(() => this.run(entry, entry.limiterWaitMs ?? 0)).finally(() => {
          this.runs.delete(run);
          setImmediate(() => this.wakeSlotWaiters());
        });
        this.runs.add(run);
      }
      this.opts.onStarted?.();
      this.roomFreed?.();
    }
  }

  /**
   * A handler threw where nothing could catch it (an uncaught exception in a callback it
   * scheduled): its run ends as a failed attempt, so a job that keeps doing it ends
   * `failed` instead of taking replicas down forever.
   */
  crashed(jobId: number, err: Error): void {
    const entry = this.held.get(jobId);
    if (!entry || entry.state !== 'running') return;
    entry.settle?.({ kind: 'error', error: new Error(`the handler crashed its process (uncaught exception): ${err.message}`) });
  }

  private interrupt(entry: Entry, why: Interruption): void {
    if (entry.state === 'settled') return;
    if (entry.state === 'queued') {
      // Not started: nothing to abort. A lost queued job is simply dropped.
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

  private async run(entry: Entry, limiterWaitMs: number): Promise<void> {
    const { job } = entry;
    const { writer } = this.opts;
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
          this.forget(entry); // no longer ours: never started here
          return;
        }
        job.payload = loaded.payload;
      }
      this.setState(entry, 'running');
      entry.startedAt = performance.now();
      const attempt = job.attempts + 1;
      // The claim made this worker the holder; the `running` write follows batched. If it
      // finds the row taken (cancelled, rescued), the run is dropped.
      const run: RunRef = { id: job.id, attempts: job.attempts };
      const started = writer.markRunning(run).catch(() => false);
      // Claimed before: perhaps by a process this very job killed before its start was
      // written — record the attempt first, so such a job uses attempts up, not loops. Or
      // claimed before this replica went stale (a claim still being handed over then):
      // the leader may have given it to another replica, and only the fenced write can tell.
      if (job.reclaimed || job.claimedAt <= this.abandonedAt) {
        writer.flushStarts();
        if (!(await started)) {
          this.forget(entry); // the row was taken meanwhile: never started here
          return;
        }
        entry.startedAt = performance.now();
      }
      void started.then((ours) => {
        if (!ours) this.interrupt(entry, 'lost');
      });
      this.opts.events.emit('job:started', { job, attempt, limiterWaitMs });
      let settlement = await this.execute(entry, attempt);
      // An enqueue the handler did not await still decides whether the job parks.
      if (entry.enqueues) await Promise.allSettled([...entry.enqueues]);
      if (settlement.kind === 'done' && entry.parked) settlement = { ...settlement, parked: true };
      const outcome = outcomeOf(job, attempt, settlement, this.opts.worker);
      const durationMs = performance.now() - entry.startedAt;
      this.forget(entry);
      if (heldBytes > 0) job.payload = undefined; // the handler is done with it
      let write = outcome.write;
      if (write) {
        if (writer.withdrawStart(run)) {
          // Ended before its `running` write went out: one statement records both.
          write = { ...write, from: 'queued', attempts: job.attempts, started: true, startedAt: entry.startedAt };
        } else if (!(await started)) {
          write = undefined; // the row was taken from this run: its answer is dropped
        }
      }
      if (write) {
        writer.finish(write).catch((err: unknown) => {
          this.opts.logger.error({ job_id: job.id, err: coerceError(err).message }, 'outcome not written');
        });
      }
      const kind = write ? outcome.kind : 'lost';
      this.opts.events.emit('job:finished', { job, attempt, outcome: kind, durationMs, ...(outcome.error ? { error: outcome.error } : {}) });
    } catch (err) {
      // Never let one job take the loop down. A run that never started is handed back.
      this.opts.logger.error({ job_id: job.id, err: coerceError(err).message }, 'job run failed unexpectedly');
      if (entry.state === 'starting') {
        void this.handBack([entry], 'error');
      } else {
        this.forget(entry);
      }
    } finally {
      if (heldBytes > 0) this.payloadBudget.release(heldBytes);
    }
  }

  /** Ends a claimed job that cannot run at all: failed, attempt not counted, no handler called. */
  private failBeforeStart(entry: Entry, error: string): void {
    const { job } = entry;
    this.forget(entry);
    const write: Outcome = { id: job.id, attempts: job.attempts, from: 'queued', status: 'failed', error };
    this.opts.writer.finish(write).catch((err: unknown) => {
      this.opts.logger.error({ job_id: job.id, err: coerceError(err).message }, 'outcome not written');
    });
    this.opts.events.emit('job:refused', { job, error });
  }

  private execute(entry: Entry, attempt: number): Promise<Settlement> {
    const { job } = entry;
    return new Promise<Settlement>((resolve) => {
      let done = false;
      // Both made on first use: most handlers never report progress or log.
      let progress: ProgressReporter | undefined;
      let log: Logger | undefined;
      entry.deadline = performance.now() + job.effectiveTimeoutMs;
      this.armLater(entry);
      entry.settle = (s) => {
        if (done) return;
        done = true;
        entry.deadline = undefined;
        clearTimeout(entry.timer);
        progress?.stop();
        resolve(s);
      };
      if (entry.pendingInterruption) {
        this.interrupt(entry, entry.pendingInterruption);
        return;
      }
      const handler = this.opts.registry.get(job.type);
      const info: JobInfo = {
        id: job.id,
        queue: job.queue,
        type: job.type,
        payload: job.payload,
        attempt,
        maxAttempts: job.maxAttempts,
        resumed: job.resumed,
        childCount: job.childCount,
      };
      const { db, worker, logger } = this.opts;
      const ctx: JobContext = {
        get signal() {
          return (entry.controller ??= new AbortController()).signal;
        },
        progress: (pct) => {
          if (!done) (progress ??= new ProgressReporter(db, worker, { id: job.id, attempts: job.attempts }, logger)).report(pct);
        },
        get log() {
          return (log ??= logger.child({ job_id: job.id, queue: job.queue, type: job.type, attempt }));
        },
        children: () => childrenOf(db, job.id),
        enqueue: (jobs, options = {}) => {
          if (done) return Promise.reject(new Error('ctx.enqueue called after the run ended; nothing was inserted'));
          if (entry.controller?.signal.aborted) return Promise.reject(new Error('ctx.enqueue called after the run was stopped; nothing was inserted'));
          const p = enqueueJobs(db, jobs, options, { worker, run: { id: job.id, attempts: job.attempts } }).then((ids) => {
            if (options.wait) entry.parked = true;
            return ids;
          });
          (entry.enqueues ??= new Set()).add(p);
          void p.catch(() => undefined).finally(() => entry.enqueues?.delete(p));
          return p;
        },
      };
      // A module's handler runs inside the job's async context, so an uncaught exception it
      // causes names the job. Built-ins never need it (on Node 20 the context costs every
      // promise a hook).
      const work = handler
        ? Promise.resolve().then(() => (this.opts.registry.isFromModule(job.type) ? currentJob.run(job.id, () => handler(info, ctx)) : handler(info, ctx)))
        : Promise.reject(new PermanentJobError(`no handler for job type "${job.type}" (known: ${this.opts.registry.types().join(', ')})`));
      work.then(
        (result) => entry.settle?.({ kind: 'done', result }),
        (err: unknown) => entry.settle?.({ kind: 'error', error: coerceError(err) }),
      );
    });
  }

  /**
   * Deadline timers are armed in one pass after the current tick: most short runs have
   * settled by then and never cost a timer.
   */
  private armLater(entry: Entry): void {
    this.unarmed.push(entry);
    if (this.unarmed.length > 1) return;
    setImmediate(() => {
      const now = performance.now();
      for (const e of this.unarmed.splice(0)) {
        if (e.state !== 'running' || e.deadline === undefined) continue;
        e.timer = setTimeout(() => this.interrupt(e, 'timeout'), Math.max(0, e.deadline - now));
      }
    });
  }

  private setState(entry: Entry, state: Entry['state']): void {
    if (entry.state === 'queued' && state !== 'queued') {
      this.queuedJobs--;
      if (!entry.job.payloadDeferred) this.queuedBytes -= entry.job.payloadBytes;
    }
    entry.state = state;
  }

  private forget(entry: Entry): void {
    this.setState(entry, 'settled');
    if (this.held.get(entry.job.id) === entry) this.held.delete(entry.job.id);
  }

  private wakeSlotWaiters(): void {
    for (const w of this.slotWaiters.splice(0)) w();
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

/** Why a claimed job cannot run at all, before any handler is called. */
function refusalOf(job: RunnableJob): string | undefined {
  if (job.payloadBytes > MAX_PAYLOAD_BYTES) {
    return `payload is ${job.payloadBytes} bytes, more than the ${MAX_PAYLOAD_BYTES}-byte limit; no handler ran`;
  }
  if (job.attempts >= MAX_ATTEMPTS_BEFORE_RUN) return `attempts is ${job.attempts}, at the counter's limit; no handler ran`;
  return undefined;
}
