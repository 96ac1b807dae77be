import type { Logger } from 'pino';

/** What a handler sees of its job. */
export interface JobInfo {
  readonly id: number;
  readonly queue: string;
  readonly type: string;
  readonly payload: unknown;
  /** 1 on the first run. */
  readonly attempt: number;
  readonly maxAttempts: number;
}

export interface JobContext {
  /** Fires on cancel, timeout or shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Report 0–100; written to `jobs.progress`, throttled. */
  progress(pct: number): void;
  /** pino child logger with job_id, queue, type. */
  readonly log: Logger;
}

/** Returns the job's result (stored as JSON in `jobs.result`) or throws to fail the attempt. */
export type Handler = (job: JobInfo, ctx: JobContext) => Promise<unknown>;

/** A handler module's default export. */
export type HandlerMap = Readonly<Record<string, Handler>>;
