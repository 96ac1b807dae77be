import type { Database } from '../db/database.js';
import { workersHeartbeat, workersUpsert } from '../db/queries/workers.js';
import type { Logger } from '../observability/logger.js';
import type { Pollable } from './poller.js';

export interface WorkerIdentity {
  id: string;
  host: string;
  pid: number;
  version: string;
  /** Comma list of served queues, `*` for all. */
  queues: string;
}

/**
 * Proves this replica alive: one UPDATE of its job_workers row per interval, whatever it
 * runs. If the row is gone (the leader declared this replica dead during a long stall and
 * rescued its jobs), it registers again; the held-jobs check then drops the runs it lost.
 */
export class HeartbeatPublisher implements Pollable {
  readonly name = 'heartbeat';

  /** When the last beat that landed was sent: the server's heartbeat_at is no older. */
  private lastBeat = performance.now();
  private stale = false;

  constructor(
    private readonly opts: {
      db: Database;
      identity: WorkerIdentity;
      intervalMs: number;
      deadAfterMs: number;
      logger: Logger;
      /**
       * Called once when heartbeats have failed for so long that the leader may declare
       * this replica dead and hand its jobs to others: its runs must stop, or a job could
       * run twice at once.
       */
      onStale?: () => void;
    },
  ) {}

  /**
   * Call from a timer several times a beat: detects staleness even while statements hang.
   * Stale two beats before dead-after: the leader must never find this replica dead while
   * it still runs jobs, whatever the timers' jitter.
   */
  checkStale(): void {
    const { deadAfterMs, intervalMs, onStale, logger } = this.opts;
    if (this.stale || performance.now() - this.lastBeat < deadAfterMs - 2 * intervalMs) return;
    this.stale = true;
    logger.error({ silent_ms: Math.round(performance.now() - this.lastBeat) }, 'heartbeats failing: this replica may be declared dead; aborting its runs');
    onStale?.();
  }

  async register(): Promise<void> {
    const sentAt = performance.now();
    await workersUpsert(this.opts.db, this.opts.identity);
    this.beaten(sentAt);
  }

  /**
   * Records a heartbeat that landed (here, or in the idle probe's combined statement),
   * by when it was sent: the time it spent in flight does not count as fresh.
   */
  beaten(sentAt: number): void {
    this.lastBeat = Math.max(this.lastBeat, sentAt);
    this.stale = false;
  }

  /** ms until the next heartbeat is due (≤ 0: due now). */
  dueInMs(): number {
    return this.lastBeat + this.opts.intervalMs - performance.now();
  }

  async runOnce(): Promise<number> {
    const { db, identity, intervalMs, logger } = this.opts;
    this.checkStale();
    // The idle probe may have written it already: then wait for the next one, plus a
    // little, so the idle probe gets the first chance again.
    const due = this.dueInMs();
    if (due > 0) return due + Math.min(100, intervalMs / 10);
    const sentAt = performance.now();
    const alive = await workersHeartbeat(db, identity.id);
    this.beaten(sentAt);
    if (!alive) {
      logger.warn({ worker: identity.id }, 'worker row was gone (declared dead?); registering again');
      await workersUpsert(db, identity);
    }
    return intervalMs;
  }
}
