import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database } from '../db/database.js';
import { coerceError, PermanentJobError } from '../errors.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { JobContext, JobInfo } from '../handlers/types.js';
import type { Logger } from '../observability/logger.js';
import { childrenOf } from '../workflows/children.js';
import { enqueueJobs } from '../workflows/enqueue.js';
import type { DeadlineTimers } from './deadline-timers.js';
import type { HeldRun, HeldRuns } from './held-runs.js';
import type { Settlement } from './outcome-policy.js';
import { ProgressReporter } from './progress-reporter.js';

/** What a run's context reaches: one set per runner, shared by its runs. */
export interface RunContextDeps {
  db: Database;
  worker: string;
  registry: HandlerRegistry;
  logger: Logger;
  held: HeldRuns;
  deadlines: DeadlineTimers<HeldRun>;
}

/** The job whose handler code is running now: names the culprit of an uncaught exception. */
const currentJob = new AsyncLocalStorage<number>();

/** The id of the job whose handler (or a callback it scheduled) is executing, if any. */
export function currentJobId(): number | undefined {
  return currentJob.getStore();
}

/**
 * Calls the handler of a run that has started, with its `ctx` (signal, log, progress,
 * children, enqueue), and resolves with how it settled: the handler's answer or error, or
 * an interruption (deadline, cancel, shutdown, stale, lost) — whichever comes first.
 */
export function runInContext(entry: HeldRun, attempt: number, deps: RunContextDeps): Promise<Settlement> {
  const { job } = entry;
  return new Promise<Settlement>((resolve) => {
    let done = false;
    // Made on first use: most handlers never report progress.
    let progress: ProgressReporter | undefined;
    deps.deadlines.start(entry, job.effectiveTimeoutMs);
    entry.settle = (s) => {
      if (done) return;
      done = true;
      deps.deadlines.clear(entry);
      progress?.stop();
      resolve(s);
    };
    if (entry.pendingInterruption) {
      deps.held.interrupt(entry, entry.pendingInterruption);
      return;
    }
    const handler = deps.registry.get(job.type);
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
    const { db, worker, logger } = deps;
    const ctx = new RunContext(
      entry,
      () => logger.child({ job_id: job.id, queue: job.queue, type: job.type, attempt }),
      (pct) => {
        if (!done) (progress ??= new ProgressReporter(db, worker, { id: job.id, attempts: job.attempts }, logger)).report(pct);
      },
      () => childrenOf(db, job.id),
      (jobs, options = {}) => {
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
    );
    // A module's handler runs inside the job's async context, so an uncaught exception it
    // causes names the job. Built-ins never need it (on Node 20 the context costs every
    // promise a hook).
    const work = handler
      ? Promise.resolve().then(() => (deps.registry.isFromModule(job.type) ? currentJob.run(job.id, () => handler(info, ctx)) : handler(info, ctx)))
      : Promise.reject(new PermanentJobError(`no handler for job type "${job.type}" (known: ${deps.registry.types().join(', ')})`));
    work.then(
      (result) => entry.settle?.({ kind: 'done', result }),
      (err: unknown) => entry.settle?.({ kind: 'error', error: coerceError(err) }),
    );
  });
}

/**
 * A run's `ctx`. `signal` and `log` are getters made on first use (most handlers read
 * neither); they live on the class because an object literal with getters costs about
 * 1 µs to build on every run, a class instance some ns. progress, children and enqueue
 * are own functions, so they work detached (`const { progress } = ctx`). What the run
 * holds is in # fields: a handler cannot reach it.
 */
class RunContext implements JobContext {
  readonly #entry: HeldRun;
  readonly #makeLog: () => Logger;
  #log: Logger | undefined;

  constructor(
    entry: HeldRun,
    makeLog: () => Logger,
    readonly progress: JobContext['progress'],
    readonly children: JobContext['children'],
    readonly enqueue: JobContext['enqueue'],
  ) {
    this.#entry = entry;
    this.#makeLog = makeLog;
  }

  get signal(): AbortSignal {
    return (this.#entry.controller ??= new AbortController()).signal;
  }

  get log(): Logger {
    return (this.#log ??= this.#makeLog());
  }
}
