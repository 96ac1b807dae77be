import { ScheduleClock, ScheduleSpecError } from './next-tick.js';

export type CatchUp = 'latest' | 'none' | 'all';

/** catch_up 'all' makes at most this many jobs in one catch-up (the latest ticks). */
export const CATCH_UP_MAX = 1000;

/**
 * catch_up 'none': a tick found more than this long after its time counts as missed
 * (no replica ran) and is dropped. Normal polling finds a tick within one poll interval;
 * the publisher passes the larger of this and three poll intervals.
 */
export const MISSED_AFTER_MS = 10_000;

export interface PlanInput {
  cron: string;
  timezone: string;
  catchUp: CatchUp;
  /** next_run_at: the earliest tick not yet made (ms, UTC). Due: ≤ now. */
  nextRunAt: number;
  /** The database's UTC now (ms). */
  now: number;
  missedAfterMs?: number;
}

export interface TickPlan {
  /** Ticks to make a job for, oldest first. */
  ticks: number[];
  /** Due ticks left out by catch_up (a floor when there were very many). */
  dropped: number;
  /** The new next_run_at: first tick after now; null when there is none or the spec is bad. */
  next: number | null;
  /** Why the schedule cannot run (bad cron or zone, no future tick): goes to last_error. */
  error?: string;
}

/**
 * What one due schedule row should do now: which ticks get a job, per catch_up, and the
 * next high-water mark. Pure: the caller supplies the database's clock.
 * - every mode: a tick found within the usual poll delay is simply made;
 * - 'latest': after downtime, one job for the most recent missed tick;
 * - 'none': missed ticks (found more than missedAfterMs late) are dropped;
 * - 'all': one job per missed tick, the latest CATCH_UP_MAX of them.
 */
export function planTicks(input: PlanInput): TickPlan {
  const { catchUp, nextRunAt: from, now, missedAfterMs = MISSED_AFTER_MS } = input;
  let clock: ScheduleClock;
  try {
    clock = ScheduleClock.parse(input.cron, input.timezone);
  } catch (err) {
    if (err instanceof ScheduleSpecError) return { ticks: [], dropped: 0, next: null, error: err.message };
    throw err;
  }
  const next = clock.nextAfter(now);
  const error = next === null ? `cron "${input.cron}" has no tick after ${new Date(now).toISOString()}` : undefined;
  const withNext = (ticks: number[], dropped: number): TickPlan => (error ? { ticks, dropped, next, error } : { ticks, dropped, next });
  if (from > now) return withNext([], 0);

  // Usual case: only the high-water mark itself is due.
  const second = clock.nextAfter(from);
  if (second === null || second > now) {
    if (catchUp === 'none' && now - from > missedAfterMs) return withNext([], 1);
    return withNext([from], 0);
  }

  // Several ticks are due: a catch-up. `from` itself counts as one of them.
  if (catchUp === 'all') {
    const { ticks, dropped } = clock.ticksIn(from, now, CATCH_UP_MAX);
    if (dropped === 0 && ticks.length < CATCH_UP_MAX) return withNext([from, ...ticks], 0);
    return withNext(ticks, dropped + 1);
  }
  const { ticks, dropped } = clock.ticksIn(from, now, 1);
  const latest = ticks[0];
  if (latest === undefined) return withNext([from], 0);
  if (catchUp === 'none' && now - latest > missedAfterMs) return withNext([], dropped + 2);
  return withNext([latest], dropped + 1);
}
