import type { SchedulePeek } from '../db/queries/schedules.js';

/**
 * What the latest poll saw of the schedules, so that an idle replica with schedules sends
 * no statement of its own: the ready-jobs probe (sent every poll anyway) also reads when
 * the earliest tick is due and whether a row waits to be computed; the quiet heartbeat
 * says "nothing due". The schedules publisher sleeps until the tick, then claims it.
 * Without a recent look (the probe skipped while the channel is full) the publisher
 * peeks itself.
 */
export class ScheduleSignals {
  /** performance.now() at which the earliest tick is due; null: none known. */
  private dueAt: number | null = null;
  private toCompute = true;
  private seenAt = -Infinity;
  private listener: (() => void) | undefined;

  constructor(private readonly maxAgeMs: number) {}

  /** A probe or peek answered. */
  seen(peek: SchedulePeek): void {
    const now = performance.now();
    this.dueAt = peek.dueInMs === null ? null : now + peek.dueInMs;
    this.toCompute = peek.toCompute;
    this.seenAt = now;
    this.listener?.();
  }

  /** A quiet heartbeat: no tick is due now and nothing waits to be computed. */
  quiet(): void {
    this.forgetPast();
    this.toCompute = false;
    this.seenAt = performance.now();
  }

  /** A pass handled what was due (here or on another replica): wait for the next look. */
  handled(): void {
    this.forgetPast();
    this.toCompute = false;
  }

  /** Called after each probe or peek (the publisher's poller wakes to re-plan its sleep). */
  onSeen(listener: () => void): void {
    this.listener = listener;
  }

  /** undefined: no recent look. Else ms until the earliest known tick (null: none) and whether to compute. */
  look(): { dueInMs: number | null; toCompute: boolean } | undefined {
    const now = performance.now();
    if (now - this.seenAt > this.maxAgeMs) return undefined;
    return { dueInMs: this.dueAt === null ? null : this.dueAt - now, toCompute: this.toCompute };
  }

  private forgetPast(): void {
    if (this.dueAt !== null && this.dueAt <= performance.now()) this.dueAt = null;
  }
}
