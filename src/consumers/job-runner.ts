import pLimit, { type LimitFunction } from 'p-limit';
import type { Channel } from '../channel.js';
import type { Database } from '../db/database.js';
import type { HeldJobChange } from '../db/queries/jobs-control.js';
import type { Outcome } from '../db/queries/jobs-outcome.js';
import type { RunRef } from '../db/queries/jobs-run.js';
import { coerceError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { Logger } from '../observability/logger.js';
import type { HeldRunsView, Room, RunnableJob } from '../room.js';
import { HandBacks, type HandBackReason } from './hand-backs.js';
import { HeldRuns, type HeldRun } from './held-runs.js';
import type { RateLimiter } from './rate-limiter.js';
import { RunExecutor } from './run-executor.js';
import type { StateWriter } from './state-writer.js';

export { currentJobId } from './run-context.js';

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

/**
 * The consumer: takes claimed jobs from the channel, waits for a rate token (bottleneck)
 * and a concurrency slot (p-limit), calls the handler, and records `running` and the
 * outcome through the batched state writer (one write for both when the run is short).
 * Every claimed job ends in exactly one of: outcome written, handed back, or dropped
 * because the row was taken from this worker.
 *
 * A slot is freed when the run settles — including by timeout or cancel while a handler
 * ignores its signal — so a stuck handler cannot starve the replica. This is the loop;
 * what it holds lives in HeldRuns, one run from slot to outcome in RunExecutor (the
 * handler's `ctx` in run-context.ts, what a settled run writes in outcome-policy.ts).
 */
export class JobRunner implements Room, HeldRunsView {
  private readonly held = new HeldRuns();
  private readonly limit: LimitFunction;
  private slotWaiters: Array<() => void> = [];
  private tokenWaiters: Array<() => void> = [];
  /** Jobs granted a rate token, waiting for a slot. */
  private ready: HeldRun[] = [];
  private stop$: () => void = () => undefined;
  private stopped$: Promise<boolean> = Promise.resolve(true);
  private readonly handBacks: HandBacks;
  /** run() calls in progress: a stop waits until each has passed its outcome on. */
  private inFlight = 0;
  private noneInFlight: (() => void) | undefined;
  private readonly stopped = new Promise<void>((r) => (this.stop$ = r));
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly executor: RunExecutor;
  private roomFreed: (() => void) | undefined;
  private wakeScheduled = false;

  constructor(private readonly opts: JobRunnerOptions) {
    this.limit = pLimit(opts.concurrency);
    this.handBacks = new HandBacks(opts);
    this.executor = new RunExecutor({ ...opts, held: this.held, handBacks: this.handBacks, onEnded: () => this.runEnded() });
  }

  /** Jobs this replica holds (queued or running), for the cancel/ownership check. */
  heldRuns(): RunRef[] {
    // Rows of held claims say pending until their claim closes: nothing to check yet.
    return this.held.refs().filter((r) => !this.opts.writer.isHeld(r.id));
  }

  get runningCount(): number {
    return this.held.runningCount;
  }

  /** Claimed jobs not started yet, wherever they wait (channel, token stage, ready list). */
  get queuedCount(): number {
    return this.held.queuedCount;
  }

  /** Payload bytes the claimed, not started jobs carry. */
  get queuedPayloadBytes(): number {
    return this.held.queuedPayloadBytes;
  }

  /**
   * Registers a claimed job before it enters the channel. False when this worker already
   * holds the same run (a row rescued and re-claimed while its first claim still waits).
   */
  admit(job: RunnableJob): boolean {
    return this.held.admit(job);
  }

  /**
   * Room: a guess from recent runs, erring long. The jobs queue behind the ones held here
   * (running or waiting), run `concurrency` at a time (at least 0.1 ms each: the runner's
   * own cost) and wait for tokens at the set rate. Before any run has ended the rate alone
   * decides: a first claim of a backlog of quick jobs is held too, and if its jobs are
   * slow after all, the close writes them as they are (running, queued) a little later.
   */
  endsWithin(n: number, withinMs: number): boolean {
    if (this.stopping || n > this.opts.limiter.maxBatch) return false;
    const rounds = Math.ceil((this.held.queuedCount + this.held.runningCount + n) / this.opts.concurrency);
    const estimateMs = rounds * Math.max(this.executor.typicalRunMs ?? 0, 0.1) + (1000 * n) / this.opts.limiter.rate;
    return estimateMs <= withinMs;
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
    const cancelled = this.held.applyChanges(changes);
    const writes = cancelled.map(({ job }): Outcome => {
      this.opts.channel.remove((j) => j === job);
      this.opts.events.emit('job:cancelled-before-start', { job });
      return { id: job.id, attempts: job.attempts, from: 'queued', status: 'cancelled', error: 'cancelled before it started (cancel_requested_at was set)' };
    });
    await Promise.all(writes.map((o) => this.opts.writer.finish(o)));
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
    // Held claims leave their jobs not started pending, as a hand-back would.
    void this.opts.writer.closeHeld(true);
    const queued = this.held.abandon();
    this.opts.channel.drain();
    this.ready = [];
    for (const w of this.tokenWaiters.splice(0)) w(); // the token stage may wait for room in `ready`
    void this.handBack(queued, 'stale');
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
    this.handBacks.giveUpAt = Date.now() + graceMs + handBackMs;
    this.stopped$ = this.doStop(graceMs);
    return this.stopped$;
  }

  private async doStop(graceMs: number): Promise<boolean> {
    this.stop$();
    // Held claims first: their rows say ours only once written (jobs not started stay pending).
    await this.opts.writer.closeHeld(true);
    this.opts.channel.close();
    this.opts.channel.drain();
    this.ready = [];
    void this.handBack(this.held.queued(), 'shutdown');
    this.wakeSlotWaiters();
    for (const w of this.tokenWaiters.splice(0)) w();
    const deadline = Date.now() + graceMs;
    while (this.runningCount > 0 && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.slotWaiters.push(r);
        setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now())));
      });
    }
    this.held.interruptStarted('shutdown');
    // Running entries settle on interruption at once; starting ones when run() begins. Each
    // run() then hands its outcome to the writer, which the caller drains next.
    await Promise.race([this.untilNoneInFlight(), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.loop;
    // Anything admitted while the stop began (a claim that was in flight).
    void this.handBack(this.held.queued(), 'shutdown');
    const handedBack = await this.handBacks.settled();
    return handedBack && this.runningCount === 0;
  }

  /** Lets go of claimed, not started runs and releases their rows (see HandBacks). */
  private handBack(entries: HeldRun[], reason: HandBackReason): Promise<boolean> {
    for (const e of entries) this.held.forget(e);
    return this.handBacks.release(entries.map((e) => e.job.id), reason);
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
    const waiting: HeldRun[] = [];
    for (;;) {
      while (this.ready.length >= ahead && !this.stopping) await new Promise<void>((r) => this.tokenWaiters.push(r));
      if (this.stopping) return;
      if (waiting.length === 0) {
        const first = await channel.receive();
        if (first === undefined || this.stopping) return;
        for (const job of [first, ...channel.receiveNow(ahead - this.ready.length - 1)]) {
          const e = this.held.get(job.id);
          if (e !== undefined && e.state === 'queued') waiting.push(e);
        }
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
        this.held.setState(entry, 'starting');
        this.inFlight++;
        void this.limit(this.runEntry, entry); // run() never throws
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

  /** One function for every run: a slot's work costs no closure of its own. */
  private readonly runEntry = (entry: HeldRun): Promise<void> => this.executor.run(entry, entry.limiterWaitMs ?? 0);

  private runEnded(): void {
    if (--this.inFlight === 0) this.noneInFlight?.();
    this.wakeSlotWaitersSoon();
  }

  private untilNoneInFlight(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => (this.noneInFlight = r));
  }

  /**
   * p-limit releases its slot a few ticks after run() settles: slot waiters are woken only
   * then, or they would see the slot still taken and sleep for good. One setImmediate
   * serves every run that settles before it fires.
   */
  private wakeSlotWaitersSoon(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wakeSlotWaiters();
    });
  }

  private wakeSlotWaiters(): void {
    for (const w of this.slotWaiters.splice(0)) w();
  }
}
