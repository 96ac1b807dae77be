import { setTimeout as sleep } from 'node:timers/promises';
import { errorBackoffMs } from './backoff.js';
import { coerceError } from './errors.js';

export interface RetryOptions {
  /**
   * Ends the retrying: a wait in progress is cut short and the last error is thrown.
   * Checked after each failure, so the first try always runs.
   */
  signal?: AbortSignal;
  /** Errors worth another try; any other is thrown at once. Default: every error. */
  retryable?: (err: Error) => boolean;
  /** Tries at most this many times in all. Default: no limit. */
  attempts?: number;
  /**
   * No try starts after this instant (Date.now() ms): the last error is thrown instead. A
   * function is asked after each failure (a stop may set the deadline while retrying).
   */
  deadline?: number | (() => number);
  /** First wait, ms: errorBackoffMs's base. Default 250. */
  baseMs?: number;
  /** Longest wait, ms: errorBackoffMs's ceiling. Default 30000. */
  maxMs?: number;
  /** Told of each failure that will be tried again, with the wait before the next try. */
  onRetry?: (err: Error, failures: number, delayMs: number) => void;
  /** Injected by tests: the jitter's source. */
  random?: () => number;
}

/**
 * Runs `fn` until it resolves, waiting `errorBackoffMs` (doubling, ±25 % jitter) after
 * each failure: the one retry loop of start-up steps, the database wait and the scripts.
 * Gives up, throwing the last error, when the error is not retryable, the attempts or the
 * deadline are used up, or the signal fires. `fn` gets the attempt number (1 first).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (thrown) {
      const err = coerceError(thrown);
      if (opts.signal?.aborted || (opts.retryable && !opts.retryable(err))) throw err;
      if (opts.attempts !== undefined && attempt >= opts.attempts) throw err;
      const delay = errorBackoffMs(attempt, { baseMs: opts.baseMs, maxMs: opts.maxMs, random: opts.random });
      const deadline = typeof opts.deadline === 'function' ? opts.deadline() : opts.deadline;
      if (deadline !== undefined && Date.now() + delay > deadline) throw err;
      opts.onRetry?.(err, attempt, delay);
      // An abort ends the wait early; the loop then throws the error it was waiting out.
      await sleep(delay, undefined, { signal: opts.signal }).catch(() => undefined);
      if (opts.signal?.aborted) throw err;
    }
  }
}
