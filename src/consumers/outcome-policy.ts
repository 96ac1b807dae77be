import { retryDelayMs } from '../backoff.js';
import type { Outcome } from '../db/queries/jobs-outcome.js';
import { isPermanent, retryAfterOf } from '../errors.js';
import type { RunOutcome } from '../events.js';
import { MAX_ATTEMPTS_BEFORE_RUN, MAX_PAYLOAD_BYTES, MAX_RETRY_DELAY_MS } from '../limits.js';
import { clipText, encodeResult } from './outcome-encoding.js';

/** Why a run stopped before its handler answered. */
export type Interruption = 'timeout' | 'cancel' | 'shutdown' | 'stale' | 'lost';

/**
 * How a run settled: the handler answered, threw, or was interrupted. `parked`: the
 * handler enqueued children to wait for (ctx.enqueue with `wait`), so its answer parks the
 * job instead of ending it.
 */
export type Settlement = { kind: 'done'; result: unknown; parked?: boolean } | { kind: 'error'; error: Error } | { kind: Interruption };

export interface PolicyJob {
  id: number;
  /** attempts before this run. */
  attempts: number;
  maxAttempts: number;
  effectiveTimeoutMs: number;
}

export interface PolicyDecision {
  kind: RunOutcome;
  /** The row write, fenced on the run; none when the row is no longer this run's. */
  write?: Outcome;
  error?: string;
}

/**
 * What a settled run writes to its row — pure, so every rule is unit-tested:
 * done (result stored, or failed when it cannot be), parked (waiting for its children,
 * the attempt not counted), a thrown error (retry with backoff, or
 * failed when permanent or out of attempts), timeout and cancel (cancelled, not retried),
 * shutdown and stale (handed back, attempt not counted), lost (nothing: the row is not ours).
 */
export function outcomeOf(job: PolicyJob, attempt: number, s: Settlement, worker: string): PolicyDecision {
  // Each write is a literal, not `{ ...base, … }`: on Node 20 a spread followed by more
  // properties takes V8's slow path, about 1 µs an outcome.
  const { id } = job;
  switch (s.kind) {
    case 'done': {
      // Waiting, not done: the next run (resumed, the same attempt) returns the result.
      if (s.parked) return { kind: 'waiting', write: { id, attempts: attempt, from: 'running', status: 'waiting', uncount: true } };
      const encoded = encodeResult(s.result);
      if (!encoded.ok) return failed(job, attempt, clipText(encoded.error));
      return { kind: 'done', write: { id, attempts: attempt, from: 'running', status: 'done', result: encoded.json } };
    }
    case 'error':
      return failedAttempt(job, attempt, s.error);
    case 'timeout': {
      const error = `timed out after ${job.effectiveTimeoutMs} ms (dead job: aborted and cancelled, not retried)`;
      return { kind: 'timed_out', write: { id, attempts: attempt, from: 'running', status: 'cancelled', error }, error };
    }
    case 'cancel': {
      const error = 'cancelled while running (cancel_requested_at was set)';
      return { kind: 'cancelled', write: { id, attempts: attempt, from: 'running', status: 'cancelled', error }, error };
    }
    case 'shutdown':
    case 'stale': {
      const why = s.kind === 'shutdown' ? 'shut down' : 'lost contact with the database';
      const error = `handed back: worker ${worker} ${why} before the run finished (attempt not counted)`;
      return { kind: 'handed_back', write: { id, attempts: attempt, from: 'running', status: 'pending', error, delayMs: 0, uncount: true } };
    }
    case 'lost':
      return { kind: 'lost' };
  }
}

/** A thrown error: a retry with backoff, or failed when permanent or out of attempts. */
function failedAttempt(job: PolicyJob, attempt: number, err: Error): PolicyDecision {
  const error = clipText(err.message || err.name);
  if (isPermanent(err) || attempt >= job.maxAttempts) return failed(job, attempt, error);
  // Retry-After says "not before": never sooner than our own backoff either.
  const delayMs = Math.min(MAX_RETRY_DELAY_MS, Math.max(retryAfterOf(err) ?? 0, retryDelayMs(attempt)));
  return { kind: 'retry', write: { id: job.id, attempts: attempt, from: 'running', status: 'pending', error, delayMs }, error };
}

function failed(job: PolicyJob, attempt: number, error: string): PolicyDecision {
  return { kind: 'failed', write: { id: job.id, attempts: attempt, from: 'running', status: 'failed', error }, error };
}

/** Why a claimed job cannot run at all, before any handler is called. */
export function refusalOf(job: { payloadBytes: number; attempts: number }): string | undefined {
  if (job.payloadBytes > MAX_PAYLOAD_BYTES) {
    return `payload is ${job.payloadBytes} bytes, more than the ${MAX_PAYLOAD_BYTES}-byte limit; no handler ran`;
  }
  if (job.attempts >= MAX_ATTEMPTS_BEFORE_RUN) return `attempts is ${job.attempts}, at the counter's limit; no handler ran`;
  return undefined;
}

/**
 * A run that ended before its `running` write went out: one statement records both. The
 * write is then fenced on the claim (`queued`, attempts as claimed), counts the attempt and
 * sets started_at to `startedAt` (performance.now() when the run began).
 */
export function foldStart(write: Outcome, claimedAttempts: number, startedAt: number): Outcome {
  // Copied field by field, not spread (see outcomeOf); Folded fails to compile when Outcome
  // gains a field this does not handle.
  const folded: Required<Pick<Outcome, Folded>> & Outcome = { id: write.id, attempts: claimedAttempts, from: 'queued', status: write.status, started: true, startedAt };
  if (write.result !== undefined) folded.result = write.result;
  if (write.error !== undefined) folded.error = write.error;
  if (write.delayMs !== undefined) folded.delayMs = write.delayMs;
  if (write.uncount !== undefined) folded.uncount = write.uncount;
  return folded;
}

/** The fields foldStart sets; the rest of Outcome it copies when present. */
type Folded = Exclude<keyof Outcome, 'result' | 'error' | 'delayMs' | 'uncount'>;
