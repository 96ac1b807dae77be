import type { Logger } from 'pino';

/** What a handler sees of its job. */
export interface JobInfo {
  readonly id: number;
  readonly queue: string;
  readonly type: string;
  readonly payload: unknown;
  /** 1 on the first run. A resumed run has the attempt of the run that parked it. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /**
   * True when an earlier run of this job parked it with `ctx.enqueue(jobs, { wait: true })`
   * and its children have all ended: this run reads them (`ctx.children()`) and returns the
   * job's result.
   */
  readonly resumed: boolean;
  /** `deps_total`: how many children the job waits or waited for (0 when none). */
  readonly childCount: number;
}

/** One child as `ctx.children()` yields it. */
export interface ChildOutcome {
  readonly id: number;
  readonly type: string;
  /** Usually final (`done`, `failed`, `cancelled`) once the parent runs again. */
  readonly status: string;
  /** The child's result (parsed JSON), or null. */
  readonly result: unknown;
  readonly error: string | null;
}

/**
 * A row for `ctx.enqueue`: the columns of a plain SQL `INSERT INTO jobs`, under their SQL
 * names; anything left out takes the column's default. `payload` is a JavaScript value
 * (stored as JSON); `run_at` and `wait_deadline` a Date, or a DATETIME string in the
 * server's time zone.
 */
export interface EnqueueJob {
  type: string;
  queue?: string;
  payload?: unknown;
  priority?: number;
  run_at?: Date | string;
  max_attempts?: number;
  timeout_ms?: number | null;
  concurrency_key?: string | null;
  unique_key?: string | null;
  paused?: boolean;
  status?: 'pending' | 'waiting';
  parent_id?: number | null;
  deps_total?: number | null;
  on_child_failure?: 'fail' | 'continue';
  approval_required?: boolean;
  wait_deadline?: Date | string | null;
}

export interface EnqueueOptions {
  /**
   * Insert the jobs as children of the running job and wait for them: when the handler
   * returns, the job goes to `waiting` (its slot is freed), and once every child has ended
   * its handler runs again with `job.resumed = true`. Several calls in one run add up.
   */
  wait?: boolean;
  /** With `wait`: what a failed or cancelled child does to this job (default: the job's own, 'fail'). */
  onChildFailure?: 'fail' | 'continue';
}

export interface JobContext {
  /** Fires on cancel, timeout or shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Report 0–100; written to `jobs.progress`, throttled. */
  progress(pct: number): void;
  /** pino child logger with job_id, queue, type. */
  readonly log: Logger;
  /**
   * The job's children in id order, read page by page by key (never all at once in
   * memory): `for await (const c of ctx.children()) …`.
   */
  children(): AsyncIterable<ChildOutcome>;
  /** Inserts jobs (one INSERT) and resolves to their ids; see EnqueueOptions for `wait`. */
  enqueue(jobs: readonly EnqueueJob[], options?: EnqueueOptions): Promise<number[]>;
}

/** Returns the job's result (stored as JSON in `jobs.result`) or throws to fail the attempt. */
export type Handler = (job: JobInfo, ctx: JobContext) => Promise<unknown>;

/** A handler module's default export. */
export type HandlerMap = Readonly<Record<string, Handler>>;
