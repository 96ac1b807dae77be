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
    const ctx = new RunContext(entry, attempt, deps);
    deps.deadlines.start(entry, job.effectiveTimeoutMs);
    entry.settle = (s) => {
      if (!endRun(ctx)) return;
      deps.deadlines.clear(entry);
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
    // A module's handler runs inside the job's async context, so an uncaught exception it
    // causes names the job. Built-ins never need it (on Node 20 the context costs every
    // promise a hook). A handler that throws before its first await rejects like one after.
    let work: Promise<unknown>;
    if (!handler) {
      work = Promise.reject(new PermanentJobError(`no handler for job type "${job.type}" (known: ${deps.registry.types().join(', ')})`));
    } else {
      try {
        work = Promise.resolve(deps.registry.isFromModule(job.type) ? currentJob.run(job.id, () => handler(info, ctx)) : handler(info, ctx));
      } catch (err) {
        work = Promise.reject(coerceError(err));
      }
    }
    work.then(
      (result) => entry.settle?.({ kind: 'done', result }),
      (err: unknown) => entry.settle?.({ kind: 'error', error: coerceError(err) }),
    );
  });
}

/** The run settled: progress stops, enqueue refuses. False when it had already. (Not a method: a handler holds ctx.) */
let endRun: (ctx: RunContext) => boolean;

/**
 * A run's `ctx`. Every member is made on first use (most handlers touch none), as a getter
 * on the class: an object literal with getters costs about 1 µs to build on every run, a
 * class instance some ns. progress, children and enqueue are functions of their own, so
 * they work detached (`const { progress } = ctx`). What the run holds is in # fields: a
 * handler cannot reach it.
 */
class RunContext implements JobContext {
  readonly #entry: HeldRun;
  readonly #attempt: number;
  readonly #deps: RunContextDeps;
  #ended = false;
  #log: Logger | undefined;
  #reporter: ProgressReporter | undefined;
  #progress: JobContext['progress'] | undefined;
  #children: JobContext['children'] | undefined;
  #enqueue: JobContext['enqueue'] | undefined;

  constructor(entry: HeldRun, attempt: number, deps: RunContextDeps) {
    this.#entry = entry;
    this.#attempt = attempt;
    this.#deps = deps;
  }

  static {
    endRun = (ctx) => {
      if (ctx.#ended) return false;
      ctx.#ended = true;
      ctx.#reporter?.stop();
      return true;
    };
  }

  get signal(): AbortSignal {
    return (this.#entry.controller ??= new AbortController()).signal;
  }

  get log(): Logger {
    const { job } = this.#entry;
    return (this.#log ??= this.#deps.logger.child({ job_id: job.id, queue: job.queue, type: job.type, attempt: this.#attempt }));
  }

  get progress(): JobContext['progress'] {
    return (this.#progress ??= (pct) => {
      if (this.#ended) return;
      const { db, worker, logger } = this.#deps;
      const { job } = this.#entry;
      (this.#reporter ??= new ProgressReporter(db, worker, { id: job.id, attempts: job.attempts }, logger)).report(pct);
    });
  }

  get children(): JobContext['children'] {
    return (this.#children ??= () => childrenOf(this.#deps.db, this.#entry.job.id));
  }

  get enqueue(): JobContext['enqueue'] {
    return (this.#enqueue ??= (jobs, options = {}) => {
      const entry = this.#entry;
      if (this.#ended) return Promise.reject(new Error('ctx.enqueue called after the run ended; nothing was inserted'));
      if (entry.controller?.signal.aborted) return Promise.reject(new Error('ctx.enqueue called after the run was stopped; nothing was inserted'));
      const { job } = entry;
      const p = enqueueJobs(this.#deps.db, jobs, options, { worker: this.#deps.worker, run: { id: job.id, attempts: job.attempts } }).then((ids) => {
        if (options.wait) entry.parked = true;
        return ids;
      });
      (entry.enqueues ??= new Set()).add(p);
      void p.catch(() => undefined).finally(() => entry.enqueues?.delete(p));
      return p;
    });
  }
}
