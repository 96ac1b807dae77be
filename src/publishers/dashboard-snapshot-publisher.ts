import type { Database } from '../db/database.js';
import {
  ACTIVE_STATUSES,
  countsReplace,
  jobsCountCapped,
  jobsQueuesWithStatus,
  marksLockThroughput,
  marksSeedThroughput,
  throughputAdd,
  throughputPrune,
  type CountRow,
} from '../db/queries/dashboard.js';
import { inTransaction } from '../db/transaction.js';
import type { Leader } from '../leader/leader.js';
import type { Pollable } from './poller.js';

/** Counts stop here: a queue with more rows in one status shows "1,000,000+". */
export const COUNT_CAP = 1_000_000;
/** Throughput rows are kept this long. */
const THROUGHPUT_DAYS = 7;
/** Finished rows are counted this far behind NOW(3): a transaction commits a little after it stamps finished_at. */
const LAG_S = 2;
/** On the first tick (fresh install or upgrade), the last hour is counted, so the chart is not empty. */
const BACKFILL_S = 3600;
/** At most this much history per tick: a long outage is caught up in bounded steps. */
const MAX_WINDOW_S = 300;

export interface DashboardSnapshotOptions {
  db: Database;
  leader: Leader;
  worker: string;
  /** Between ticks. The daemon uses 5 × SLUICE_POLL_MS, from 250 ms to 5 s. */
  intervalMs: number;
  /** Tests lower it to see the cap. */
  countCap?: number;
}

export interface SnapshotTick {
  counted: number;
  finished: number;
  behind: boolean;
}

/**
 * Leader-only: keeps the dashboard's snapshot that every replica serves (DESIGN.md
 * "Dashboard"). Counts active statuses per queue with LIMITed index ranges, and adds
 * the jobs that finished since the last tick to per-minute throughput rows. Its cost is
 * the backlog plus what finished lately, paid once per tick whatever the number of
 * viewers; it never reads finished history.
 */
export class DashboardSnapshotPublisher implements Pollable {
  readonly name = 'dashboard-snapshot';

  constructor(private readonly opts: DashboardSnapshotOptions) {}

  async runOnce(): Promise<number> {
    if (!this.opts.leader.isLeader()) return this.opts.intervalMs;
    const tick = await this.tick();
    // Behind after an outage: catch up at once, a bounded window at a time.
    return tick.behind ? 0 : this.opts.intervalMs;
  }

  async tick(): Promise<SnapshotTick> {
    const counts = await this.counts();
    await inTransaction(this.opts.db, 'countsReplace', (tx) => countsReplace(tx, counts, this.opts.worker));
    await marksSeedThroughput(this.opts.db, BACKFILL_S);
    const { finished, behind } = await inTransaction(this.opts.db, 'throughput', async (tx) => {
      const window = await marksLockThroughput(tx, LAG_S, MAX_WINDOW_S);
      if (!window) return { finished: 0, behind: false };
      const n = await throughputAdd(tx, window.from, window.to);
      return { finished: n, behind: Date.parse(window.to.replace(' ', 'T')) - Date.parse(window.from.replace(' ', 'T')) >= MAX_WINDOW_S * 1000 };
    });
    await throughputPrune(this.opts.db, THROUGHPUT_DAYS, 1000);
    return { counted: counts.length, finished, behind };
  }

  /** (queue, status) rows with their capped counts; zero rows are left out. */
  private async counts(): Promise<CountRow[]> {
    const cap = this.opts.countCap ?? COUNT_CAP;
    const out: CountRow[] = [];
    for (const status of ACTIVE_STATUSES) {
      for (const queue of await jobsQueuesWithStatus(this.opts.db, status)) {
        // One past the cap tells "exactly the cap" from "more than the cap".
        const n = await jobsCountCapped(this.opts.db, status, queue, cap + 1);
        if (n > 0) out.push({ queue, status, n: Math.min(n, cap), capped: n > cap });
      }
    }
    return out;
  }
}
