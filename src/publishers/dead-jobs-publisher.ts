import type { Database } from '../db/database.js';
import { jobsCancelOverdue, jobsRescueOf, jobsSelectOrphanWorkers, workersDeleteDead, workersSelectDead } from '../db/queries.js';
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
  now?: () => number;
}

/**
 * Leader-only: finds dead replicas (heartbeat older than SLUICE_DEAD_AFTER_MS) and
 * returns their jobs — queued ones unchanged, running ones as a failed attempt — then
 * removes their rows; rescues jobs whose worker has no row at all; and cancels running
 * jobs long past their timeout whose replica did not (its own deadline timer is the
 * first line; this is the backstop).
 *
 * It declares no one dead until it has seen the database for one dead-after span, after
 * it became leader and after every outage: when the database comes back every replica's
 * heartbeat looks old, and the live ones need that long to beat again and to write the
 * outcomes they kept while it was away. Sweeping at once would rerun finished jobs.
 */
export class DeadJobsPublisher implements Pollable {
  readonly name = 'dead-jobs';
  /** Sweeps that judge liveness wait until then (the clock of `now`). */
  private notBefore: number;
  private lastOrphanCheck = -Infinity;
  private readonly now: () => number;

  constructor(private readonly opts: DeadJobsOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.notBefore = this.now() + opts.deadAfterMs;
    opts.events.on('leader:changed', ({ leader }) => {
      if (leader) this.holdOff();
    });
    opts.events.on('db:health', ({ healthy }) => {
      if (healthy) this.holdOff();
    });
  }

  /** Starts a fresh wait of one dead-after span before anyone is declared dead. */
  holdOff(): void {
    this.notBefore = Math.max(this.notBefore, this.now() + this.opts.deadAfterMs);
  }

  async runOnce(): Promise<number> {
    const { intervalMs, leader, signals, deadAfterMs } = this.opts;
    if (!leader.isLeader()) return intervalMs;
    if (this.now() < this.notBefore) return Math.min(intervalMs, Math.max(10, this.notBefore - this.now()));
    // Orphans have no heartbeat to go stale, so the probe cannot hint at them: look once
    // per dead-after span (one statement over the queued and running entries only).
    const orphanDue = this.now() - this.lastOrphanCheck >= deadAfterMs;
    if (orphanDue || (signals?.worthSweeping ?? true)) await this.sweep({ orphans: orphanDue });
    return intervalMs;
  }

  async sweep(opts: { orphans?: boolean } = {}): Promise<{ rescued: number; requeued: number; workers: number; timedOut: number }> {
    const { db, deadAfterMs, defaultTimeoutMs, events, worker } = this.opts;
    const dead = (await workersSelectDead(db, deadAfterMs)).filter((id) => id !== worker);
    let orphaned: string[] = [];
    if (opts.orphans ?? true) {
      this.lastOrphanCheck = this.now();
      orphaned = (await jobsSelectOrphanWorkers(db, deadAfterMs)).filter((id) => id !== worker);
    }
    let rescued = 0;
    let requeued = 0;
    let workers = 0;
    if (dead.length + orphaned.length > 0) {
      const r = await jobsRescueOf(db, [...dead, ...orphaned], 'worker died while running it');
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
