import type { Database, Executor } from '../db/database.js';
import {
  jobsInsertScheduled,
  jobsSelectUnended,
  schedulesAdvance,
  schedulesLockDue,
  schedulesPeek,
  schedulesSelectToCompute,
  schedulesSetComputed,
  type DueSchedule,
} from '../db/queries/schedules.js';
import { inTransaction } from '../db/transaction.js';
import type { SluiceEventMap, SluiceEvents } from '../events.js';
import { ScheduleClock, ScheduleSpecError } from '../schedules/next-tick.js';
import { MISSED_AFTER_MS, planTicks } from '../schedules/tick-plan.js';
import type { Pollable } from './poller.js';
import type { ScheduleSignals } from './schedule-signals.js';

export interface SchedulesOptions {
  db: Database;
  events: SluiceEvents;
  /** SLUICE_POLL_MS: the longest sleep, and "late" is a tick made over twice this after its time. */
  pollMs: number;
  /** The probe's view of the schedules; without it the publisher peeks every poll. */
  signals?: ScheduleSignals;
  /** Schedules locked per transaction (one job INSERT and one UPDATE each). */
  batchSize?: number;
}

/**
 * Makes the jobs of recurring schedules (table job_schedules), on every replica.
 *
 * Each tick makes exactly one job cluster-wide: a due row is locked with FOR UPDATE SKIP
 * LOCKED, and its job is inserted and its next_run_at moved forward by compare-and-set
 * in that one transaction, so a tick is made by one transaction or by none; the unique
 * (schedule_id, scheduled_for) is a second guard. Nothing depends on leadership or on
 * finished jobs surviving retention.
 *
 * Idle it sends no statement: the ready-jobs probe reads when the next tick is due (see
 * ScheduleSignals), and this loop sleeps until then. New and edited rows (spec_hash no
 * longer matches computed_for) get their next tick computed first.
 */
export class SchedulesPublisher implements Pollable {
  readonly name = 'schedules';
  /** The last pass was full: go on without waiting for the next look. */
  private more = false;
  private wake: () => void = () => undefined;

  constructor(private readonly opts: SchedulesOptions) {
    // Each probe's look re-plans this loop's sleep (a tick may now be due sooner).
    opts.signals?.onSeen(() => this.wake());
  }

  wakeWith(wake: () => void): void {
    this.wake = wake;
  }

  async runOnce(): Promise<number> {
    const { db, pollMs, signals } = this.opts;
    let look = this.more ? { dueInMs: 0, toCompute: true } : signals?.look();
    if (!look) {
      look = await schedulesPeek(db);
      signals?.seen(look);
    }
    const due = look.dueInMs !== null && look.dueInMs <= 0;
    if (!look.toCompute && !due) return Math.max(1, Math.min(pollMs, look.dueInMs ?? pollMs));

    const computed = look.toCompute ? await this.computeNext() : { more: false };
    const ticked = due || this.more ? await this.tick() : { more: false };
    this.more = computed.more || ticked.more;
    signals?.handled();
    // Next: the probe's next look wakes this loop (ScheduleSignals.onSeen) with the new due time.
    return this.more ? 0 : pollMs;
  }

  /**
   * New or edited rows: next_run_at becomes the first tick after now in the new spec
   * (an edit takes effect from the next tick; ticks of a paused row are not made, and
   * resuming starts from the next tick, not a catch-up). A bad cron or zone is stored
   * in last_error, next_run_at NULL: the row is skipped until edited.
   */
  async computeNext(): Promise<{ computed: number; more: boolean }> {
    const { db, events } = this.opts;
    const limit = this.opts.batchSize ?? 50;
    const rows = await schedulesSelectToCompute(db, limit);
    let computed = 0;
    for (const row of rows) {
      const now = Date.parse(`${row.now}Z`);
      let next: number | null = null;
      let error: string | null = null;
      try {
        next = ScheduleClock.parse(row.cron, row.timezone).nextAfter(now);
        if (next === null) error = `cron "${row.cron}" has no tick after ${new Date(now).toISOString()}`;
      } catch (err) {
        if (!(err instanceof ScheduleSpecError)) throw err;
        error = err.message;
      }
      const stored = await schedulesSetComputed(db, row.id, row.specHash, row.paused || next === null ? null : utcText(next), error);
      if (stored) computed++;
      if (stored && error) events.emit('schedule:invalid', { scheduleId: row.id, name: row.name, error });
    }
    return { computed, more: rows.length === limit };
  }

  /** One transaction: lock due rows, make their jobs, move their high-water marks. */
  async tick(): Promise<{ made: number; more: boolean }> {
    const { db, events, pollMs } = this.opts;
    const limit = this.opts.batchSize ?? 50;
    const reports: Array<() => void> = [];
    const { made, locked } = await inTransaction(db, 'schedulesTick', async (tx) => {
      const due = await schedulesLockDue(tx, limit);
      const skipCandidates = due.filter((s) => s.overlap === 'skip' && s.lastJobId !== null).map((s) => s.lastJobId as number);
      const unended = await jobsSelectUnended(tx, skipCandidates);
      let made = 0;
      for (const s of due) {
        const outcome = await this.tickOne(tx, s, unended);
        made += outcome.made;
        reports.push(() => {
          if (outcome.error) events.emit('schedule:invalid', { scheduleId: s.id, name: s.name, error: outcome.error });
          events.emit('schedule:ticked', { ...outcome.report, lateAfterMs: 2 * pollMs });
        });
      }
      return { made, locked: due.length };
    });
    // Reported once committed: a rolled-back tick made nothing.
    for (const report of reports) report();
    return { made, more: locked === limit };
  }

  /** One locked row: plan its ticks, apply overlap, insert, advance. Throws if the CAS fails. */
  private async tickOne(tx: Executor, s: DueSchedule, unended: Set<number>): Promise<{ made: number; error?: string; report: TickReport }> {
    const now = Date.parse(`${s.now}Z`);
    const plan = planTicks({
      cron: s.cron,
      timezone: s.timezone,
      catchUp: s.catchUp,
      nextRunAt: Date.parse(`${s.nextRunAt}Z`),
      now,
      missedAfterMs: Math.max(MISSED_AFTER_MS, 3 * this.opts.pollMs),
    });
    const planned = plan.ticks.map(utcText);
    // overlap 'skip': the previous job has not ended (a job that is gone has ended).
    const overlapping = planned.length > 0 && s.overlap === 'skip' && s.lastJobId !== null && unended.has(s.lastJobId);
    const ticks = overlapping ? [] : planned;
    const made = await jobsInsertScheduled(tx, s.id, ticks);
    const lastTick = ticks.at(-1) ?? null;
    const error = plan.error ?? (overlapping ? `skipped tick ${planned.at(-1)}: job ${s.lastJobId} has not ended (overlap 'skip')` : null);
    const changed = await schedulesAdvance(tx, { id: s.id, from: s.nextRunAt, next: plan.next === null ? null : utcText(plan.next), lastTick, error });
    if (changed !== 1) throw new Error(`schedule ${s.id} (${s.name}): next_run_at moved under its row lock; rolled back`);
    return {
      made,
      ...(plan.error ? { error: plan.error } : {}),
      report: {
        scheduleId: s.id,
        name: s.name,
        ticks,
        lateMs: ticks.map((t) => now - Date.parse(`${t}Z`)),
        made,
        skipped: { overlap: overlapping ? planned.length : 0, catchUp: plan.dropped, duplicate: ticks.length - made },
        next: plan.next === null ? null : utcText(plan.next),
      },
    };
  }
}

type TickReport = Omit<SluiceEventMap['schedule:ticked'], 'lateAfterMs'>;

/** An instant as DATETIME(3) text in UTC, the form job_schedules and jobs.scheduled_for hold. */
export function utcText(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23).replace('T', ' ');
}
