import type { Database } from '../db/database.js';
import { jobsDelete, jobsSelectExpired } from '../db/queries.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable } from './poller.js';

export interface RetentionOptions {
  db: Database;
  leader: Leader;
  retentionHours: number;
  events: SluiceEvents;
  /** Rows per DELETE: small, so a large backlog never holds locks for long. */
  batchSize?: number;
  /** Pause between batches while catching up. */
  pauseMs?: number;
  intervalMs?: number;
}

/**
 * Leader-only: deletes finished jobs older than SLUICE_RETENTION_HOURS, oldest first, in
 * small primary-key batches with a pause between them (range deletes deadlock under
 * replicas and stall the database). 0 hours keeps everything.
 */
export class RetentionPublisher implements Pollable {
  readonly name = 'retention';

  constructor(private readonly opts: RetentionOptions) {}

  async runOnce(): Promise<number> {
    const { leader, retentionHours, intervalMs = 600_000, pauseMs = 100 } = this.opts;
    if (retentionHours <= 0 || !leader.isLeader()) return intervalMs;
    const { more } = await this.pruneBatch();
    return more ? pauseMs : intervalMs;
  }

  /** One batch of the oldest expired rows. */
  async pruneBatch(): Promise<{ deleted: number; more: boolean }> {
    const { db, retentionHours, batchSize = 500, events } = this.opts;
    const ids = await jobsSelectExpired(db, retentionHours, batchSize);
    const deleted = await jobsDelete(db, ids);
    if (deleted > 0) events.emit('sweep:done', { sweep: 'pruned', count: deleted });
    return { deleted, more: ids.length === batchSize };
  }
}
