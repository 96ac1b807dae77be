import type { Database } from '../db/database.js';
import { jobsCancelPending } from '../db/queries/jobs-control.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable } from './poller.js';
import type { SweepSignals } from './sweep-signals.js';

/** Pending jobs one cancel statement ends. */
const CANCEL_BATCH = 1000;
/** Statements one sweep sends at most; what is left waits for the next sighting. */
const MAX_BATCHES = 10;

export interface PendingCancelsOptions {
  db: Database;
  leader: Leader;
  events: SluiceEvents;
  /** The leader's probe says when pending jobs have a cancel request; this sweep sends nothing otherwise. */
  signals: SweepSignals;
  pollMs: number;
}

/**
 * Leader-only: ends pending jobs whose cancel was requested (`cancelled`). Jobs already
 * claimed are the held-jobs publisher's; children are left to the workflow publisher.
 *
 * It sends no statement of its own to find work: the ready-jobs probe, sent every poll
 * anyway, tells it (SweepSignals) and wakes it, so an idle leader pays nothing for it.
 */
export class PendingCancelsPublisher implements Pollable {
  readonly name = 'pending-cancels';
  private wake: () => void = () => undefined;

  constructor(private readonly opts: PendingCancelsOptions) {
    opts.signals.onPendingCancels(() => this.wake());
  }

  wakeWith(wake: () => void): void {
    this.wake = wake;
  }

  async runOnce(): Promise<number> {
    const { leader, signals, pollMs } = this.opts;
    // The timer is a backstop: a sighting wakes the loop at once.
    if (signals.takePendingCancels() && leader.isLeader()) await this.sweep();
    return pollMs;
  }

  /** Cancels in bounded batches while they come back full; returns how many it ended. */
  async sweep(): Promise<{ cancelled: number }> {
    let cancelled = 0;
    for (let i = 0, got = CANCEL_BATCH; i < MAX_BATCHES && got === CANCEL_BATCH; i++) cancelled += got = await jobsCancelPending(this.opts.db, CANCEL_BATCH);
    if (cancelled > 0) this.opts.events.emit('sweep:done', { sweep: 'cancelled', count: cancelled });
    return { cancelled };
  }
}
