/**
 * Retry delay for a failed attempt: exponential in the attempt number with full-range
 * jitter in its upper half, so a burst of failures spreads out instead of retrying in
 * lock-step. attempt 1 → ~1–2 s, 2 → ~2–4 s, … capped at `maxMs`.
 */
export function retryDelayMs(attempt: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 1000;
  const max = opts.maxMs ?? 3_600_000;
  const random = opts.random ?? Math.random;
  const exp = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(Math.min(max, exp + random() * exp));
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
