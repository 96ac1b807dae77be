import { MAX_BACKOFF_EXPONENT } from './limits.js';

/**
 * The one backoff of a failed attempt, whoever records it: the runner after a thrown
 * error or a lost request (retryDelayMs), and the leader when it rescues the run of a
 * dead replica (retryDelaySql, in the rescue's UPDATE). Attempt n waits
 * RETRY_BASE_MS × 2^(n−1) plus up to as much again as jitter, at most RETRY_MAX_MS:
 * attempt 1 → 1–2 s, 2 → 2–4 s, 3 → 4–8 s, … 13 and later → 1 h. The jitter spreads a
 * burst of failures (a replica that died with 500 runs, say) instead of retrying them in
 * lock-step. The exponent is capped at MAX_BACKOFF_EXPONENT before the power is taken,
 * so SQL's POW never leaves DOUBLE range however large `attempts` grows.
 */
export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 3_600_000;

/** The retry delay of attempt `attempt` (1 is the first run), in ms. */
export function retryDelayMs(attempt: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? RETRY_BASE_MS;
  const max = opts.maxMs ?? RETRY_MAX_MS;
  const random = opts.random ?? Math.random;
  const exp = Math.min(max, base * 2 ** Math.min(MAX_BACKOFF_EXPONENT, Math.max(0, attempt - 1)));
  return Math.round(Math.min(max, exp + random() * exp));
}

/**
 * retryDelayMs as a SQL expression (ms) of the attempt named by `attempt` (a column or
 * expression of the row being written), with RAND() for the jitter: each row of an UPDATE
 * gets its own. No params: the constants are written into the text.
 */
export function retryDelaySql(attempt: string): string {
  const exponent = `LEAST(GREATEST(${attempt} - 1, 0), ${MAX_BACKOFF_EXPONENT})`;
  return `ROUND(LEAST(${RETRY_MAX_MS}, ${RETRY_BASE_MS} * POW(2, ${exponent}) * (1 + RAND())))`;
}

/**
 * Delay before a background loop's next try after an error (database gone, say):
 * doubles per consecutive failure up to `maxMs`, with ±25 % jitter.
 */
export function errorBackoffMs(failures: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 250;
  const max = opts.maxMs ?? 30_000;
  const random = opts.random ?? Math.random;
  const exp = Math.min(max, base * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.75 + random() * 0.5));
}

/** A poll interval with ±10 % jitter: the mean stays the interval, replicas drift apart. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (0.9 + random() * 0.2));
}
