import { jitter } from '../backoff.js';
import type { Database } from '../db/database.js';
import { jobsHeldChanges } from '../db/queries/jobs-control.js';
import type { HeldRunsView } from '../room.js';
import type { Pollable } from './poller.js';

/**
 * Watches the jobs this replica holds for cancel requests and for rows taken from it
 * (rescued by the leader, cancelled as overdue, edited by hand). One primary-key lookup
 * per poll while the replica holds work, none while it is idle.
 */
export class HeldJobsPublisher implements Pollable {
  readonly name = 'held-jobs';

  constructor(
    private readonly opts: { db: Database; runner: HeldRunsView; worker: string; pollMs: number; random?: () => number },
  ) {}

  async runOnce(): Promise<number> {
    const { db, runner, worker, pollMs } = this.opts;
    const held = runner.heldRuns();
    if (held.length > 0) {
      const changes = await jobsHeldChanges(db, worker, held);
      if (changes.length > 0) await runner.applyChanges(changes);
    }
    return jitter(pollMs, this.opts.random);
  }
}
