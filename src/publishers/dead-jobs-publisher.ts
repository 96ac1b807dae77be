import type { Database } from '../db/database.js';
import { jobsCancelOverdue, jobsRescueOf, workersDeleteDead, workersSelectDead } from '../db/queries.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable } from './poller.js';
import type { SweepSignals } from './sweep-signals.js';

export interface DeadJobsOptions {
  db: Database;
  leader: Leader;
  worker: string;
  intervalMs: number;
  deadAfterMs: number;
  defaultTimeoutMs: number;
  events: SluiceEvents;
  /** The probe's hints; without them the sweep runs every interval. */
  signals?: SweepSignals;
}

/**
 * Leader-only: finds dead replicas (heartbeat older than SLUICE_DEAD_AFTER_MS) and
 * returns their jobs — queued ones unchanged, running ones as a failed attempt — then
 * removes their rows; and cancels running jobs long past their timeout whose replica
 * did not (its own deadline timer is the first line; this is the backstop).
 */
export class DeadJobsPublisher implements Pollable {
  readonly name = 'dead-jobs';

  constructor(private readonly opts: DeadJobsOptions) {}

  async runOnce(): Promise<number> {
    const { intervalMs, leader, signals } = this.opts;
    if (leader.isLeader() && (signals?.worthSweeping ?? true)) await this.sweep();
    return intervalMs;
  }

  async sweep(): Promise<{ rescued: number; requeued: number; workers: number; timedOut: number }> {
    const { db, deadAfterMs, defaultTimeoutMs, events, worker } = this.opts;
    const dead = (await workersSelectDead(db, deadAfterMs)).filter((id) => id !== worker);
    let rescued = 0;
    let requeued = 0;
    let workers = 0;
    if (dead.length > 0) {
      const r = await jobsRescueOf(db, dead, 'worker died while running it');
      rescued = r.rescued;
      requeued = r.requeued;
      workers = await workersDeleteDead(db, dead, deadAfterMs);
      if (rescued > 0) events.emit('sweep:done', { sweep: 'rescued', count: rescued });
      if (requeued > 0) events.emit('sweep:done', { sweep: 'requeued', count: requeued });
    }
    // The runner cancels at the deadline itself; one heartbeat-to-death span later, the
    // leader does it for runners that could not.
    const timedOut = await jobsCancelOverdue(db, defaultTimeoutMs, deadAfterMs);
    if (timedOut > 0) events.emit('sweep:done', { sweep: 'timed_out', count: timedOut });
    return { rescued, requeued, workers, timedOut };
  }
}
