import type { Database } from '../db/database.js';
import { workersHeartbeat, workersUpsert } from '../db/queries.js';
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
  beats = 0;

  constructor(private readonly opts: { db: Database; identity: WorkerIdentity; intervalMs: number; logger: Logger }) {}

  async register(): Promise<void> {
    await workersUpsert(this.opts.db, this.opts.identity);
  }

  async runOnce(): Promise<number> {
    const { db, identity, intervalMs, logger } = this.opts;
    const alive = await workersHeartbeat(db, identity.id);
    if (!alive) {
      logger.warn({ worker: identity.id }, 'worker row was gone (declared dead?); registering again');
      await workersUpsert(db, identity);
    }
    this.beats++;
    return intervalMs;
  }
}
