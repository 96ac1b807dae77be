import type { Database } from '../db/database.js';
import { jobsReleaseQueued } from '../db/queries/jobs-outcome.js';
import { coerceError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import type { Logger } from '../observability/logger.js';
import { retry } from '../retry.js';

export type HandBackReason = 'shutdown' | 'stale' | 'error';

/**
 * Releases claimed, not started jobs, retrying through a database blip until it lands or
 * `giveUpAt` passes (only a stop sets it), and keeps the releases in flight so a stop can
 * wait for them.
 */
export class HandBacks {
  /** Epoch ms after which hand-backs stop retrying. */
  giveUpAt = Infinity;
  private readonly inFlight = new Set<Promise<boolean>>();

  constructor(private readonly opts: { db: Database; worker: string; logger: Logger; events: SluiceEvents }) {}

  /**
   * Resolves false if it gave up: the jobs stay `queued` under this worker id, and the
   * worker row must stay too, so the leader's dead-replica sweep returns them.
   */
  release(ids: number[], reason: HandBackReason): Promise<boolean> {
    if (ids.length === 0) return Promise.resolve(true);
    const attempt = async (): Promise<boolean> => {
      const { logger } = this.opts;
      try {
        const n = await retry(() => jobsReleaseQueued(this.opts.db, this.opts.worker, ids), {
          maxMs: 2000,
          deadline: () => this.giveUpAt,
          onRetry: (err, failures) => failures <= 3 && logger.warn({ err: err.message, jobs: ids.length, failures }, 'could not hand queued jobs back'),
        });
        this.opts.events.emit('jobs:handed-back', { count: n, reason });
        return true;
      } catch (err) {
        logger.warn({ err: coerceError(err).message, jobs: ids.length }, 'could not hand queued jobs back; giving up (the leader returns them)');
        return false;
      }
    };
    const p = attempt();
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  /** True when every release in flight lands. */
  async settled(): Promise<boolean> {
    const results = await Promise.all([...this.inFlight]);
    return results.every(Boolean);
  }
}
