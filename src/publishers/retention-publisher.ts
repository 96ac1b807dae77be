import type { Database } from '../db/database.js';
import { jobsDelete, jobsSelectExpired, type ExpiredRow } from '../db/queries/retention.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable, Round } from './poller.js';

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

/** What one round deleted. */
export type RetentionRound = { deleted: number } & Round;

/**
 * Leader-only: deletes finished jobs older than SLUICE_RETENTION_HOURS, oldest first, in
 * small primary-key batches with a pause between them (range deletes deadlock under
 * replicas and stall the database). 0 hours keeps everything.
 *
 * One batch a round: a full batch asks for the next one after the pause, starting past
 * its last row; a short one ends the pass, and the next pass starts from the oldest again.
 */
export class RetentionPublisher implements Pollable {
  readonly name = 'retention';
  /** Where the pass under way goes on; undefined: a new pass. */
  private after: ExpiredRow | undefined;

  constructor(private readonly opts: RetentionOptions) {}

  async runOnce(): Promise<RetentionRound> {
    const { leader, retentionHours, intervalMs = 600_000, pauseMs = 100 } = this.opts;
    if (retentionHours <= 0 || !leader.isLeader()) {
      this.after = undefined;
      return { deleted: 0, delayMs: intervalMs };
    }
    const { deleted, more } = await this.pruneBatch();
    return { deleted, delayMs: more ? pauseMs : intervalMs };
  }

  /** One batch of the oldest expired rows past the last batch's. */
  async pruneBatch(): Promise<{ deleted: number; more: boolean }> {
    const { db, retentionHours, batchSize = 500, events } = this.opts;
    const rows = await jobsSelectExpired(db, { hours: retentionHours, limit: batchSize, after: this.after });
    const deleted = await jobsDelete(db, rows.map((r) => r.id));
    if (deleted > 0) events.emit('sweep:done', { sweep: 'pruned', count: deleted });
    const more = rows.length === batchSize;
    this.after = more ? rows.at(-1) : undefined;
    return { deleted, more };
  }
}
