import type { Database } from '../db/database.js';
import { leasesResolveOf } from '../db/queries/job-leases.js';
import { jobsCancelOverdue, jobsRescueOf, jobsSelectOrphanWorkers, RESCUE_BATCH } from '../db/queries/jobs-rescue.js';
import { workersDeleteDead, workersSelectDead } from '../db/queries/workers.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable, Round } from './poller.js';
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
  /** Dead workers per batch (default 100), jobs per rescue or cancel transaction (default 1,000). */
  workerBatch?: number;
  jobBatch?: number;
}

/** What one sweep changed. */
export interface DeadJobsSwept {
  /** Running jobs of dead workers: back to pending as a failed attempt, or failed. */
  rescued: number;
  /** Queued jobs of dead workers: back to pending unchanged. */
  requeued: number;
  /** Dead workers' rows deleted. */
  workers: number;
  /** Running jobs cancelled long past their timeout. */
  timedOut: number;
}

export type DeadJobsRound = DeadJobsSwept & Round;

const NOTHING: DeadJobsSwept = { rescued: 0, requeued: 0, workers: 0, timedOut: 0 };

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

  async runOnce(): Promise<DeadJobsRound> {
    const { intervalMs, leader, signals, deadAfterMs } = this.opts;
    if (!leader.isLeader()) return { ...NOTHING, delayMs: intervalMs };
    if (this.now() < this.notBefore) return { ...NOTHING, delayMs: Math.min(intervalMs, Math.max(10, this.notBefore - this.now())) };
    // Orphans have no heartbeat to go stale, so the probe cannot hint at them: look once
    // per dead-after span (one statement over the queued and running entries only).
    const orphanDue = this.now() - this.lastOrphanCheck >= deadAfterMs;
    const hinted = signals?.worthSweeping ?? true;
    if (!orphanDue && !hinted) return { ...NOTHING, delayMs: intervalMs };
    // Only the orphan check when the probe saw no dead worker and no overdue job: an idle
    // leader then sends one statement per dead-after span here, not three.
    return { ...(await this.sweep({ orphans: orphanDue, hinted })), delayMs: intervalMs };
  }

  /**
   * Every part of the sweep, each batch by batch until a short one. `hinted: false` (the
   * probe saw nothing for them) skips the dead workers and the overdue jobs.
   */
  async sweep(opts: { orphans?: boolean; hinted?: boolean } = {}): Promise<DeadJobsSwept> {
    const { db, deadAfterMs, defaultTimeoutMs, events, worker, workerBatch = 100, jobBatch = RESCUE_BATCH } = this.opts;
    const swept = { ...NOTHING };
    const rescue = async (workers: string[]): Promise<void> => {
      await leasesResolveOf(db, workers);
      const r = await jobsRescueOf(db, workers, 'worker died while running it', jobBatch);
      swept.rescued += r.rescued;
      swept.requeued += r.requeued;
    };
    const hinted = opts.hinted ?? true;
    for (let afterId = ''; hinted; ) {
      const dead = await workersSelectDead(db, { deadAfterMs, afterId, limit: workerBatch });
      const others = dead.filter((id) => id !== worker);
      if (others.length > 0) {
        await rescue(others);
        swept.workers += await workersDeleteDead(db, others, deadAfterMs);
      }
      const last = dead.at(-1);
      if (last === undefined || dead.length < workerBatch) break;
      afterId = last;
    }
    if (opts.orphans ?? true) {
      this.lastOrphanCheck = this.now();
      const orphaned = (await jobsSelectOrphanWorkers(db, deadAfterMs)).filter((id) => id !== worker);
      if (orphaned.length > 0) await rescue(orphaned);
    }
    if (swept.rescued > 0) events.emit('sweep:done', { sweep: 'rescued', count: swept.rescued });
    if (swept.requeued > 0) events.emit('sweep:done', { sweep: 'requeued', count: swept.requeued });
    // The runner cancels at the deadline itself; one heartbeat-to-death span later, the
    // leader does it for runners that could not.
    if (hinted) swept.timedOut = await jobsCancelOverdue(db, { defaultTimeoutMs, graceMs: deadAfterMs, batchSize: jobBatch });
    if (swept.timedOut > 0) events.emit('sweep:done', { sweep: 'timed_out', count: swept.timedOut });
    return swept;
  }
}
