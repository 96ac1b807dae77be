import type { Database } from '../db/database.js';
import {
  countsReplace,
  jobsCountCapped,
  jobsQueuesWithStatus,
  marksLockThroughput,
  marksSeedThroughput,
  marksTouchCounts,
  throughputAdd,
  throughputPrune,
  type CountRow,
} from '../db/queries/dashboard-snapshot.js';
import { ACTIVE_STATUSES } from '../db/queries/job-statuses.js';
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
/** After a tick that found nothing finished, the next comes this many intervals later (within one window). */
const IDLE_TICKS = 4;

export interface DashboardSnapshotOptions {
  db: Database;
  leader: Leader;
  worker: string;
  /**
   * Between the leader's ticks (the daemon: a minute; throughput rows are per minute). Counts
   * are fresher while someone looks: a replica serving a page refreshes them when they are
   * older than the freshness the dashboard asks for (`refreshCounts()`).
   */
  intervalMs: number;
  /** Tests lower it to see the cap. */
  countCap?: number;
}

/** Old rows of job_throughput are pruned at most this often. */
const PRUNE_EVERY_MS = 3_600_000;

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

  private seeded = false;
  private lastPrune = -Infinity;
  /** The counts last written by this process, to skip rewriting the same snapshot. */
  private lastCounts: string | undefined;

  constructor(private readonly opts: DashboardSnapshotOptions) {}

  /** Recounts the active statuses now and stores them (only the time, when unchanged). */
  private async refreshCounts(): Promise<number> {
    const counts = await this.counts();
    const key = JSON.stringify(counts);
    if (key !== this.lastCounts) {
      await inTransaction(this.opts.db, 'countsReplace', (tx) => countsReplace(tx, counts, this.opts.worker));
      this.lastCounts = key;
    } else {
      await marksTouchCounts(this.opts.db, this.opts.worker);
    }
    return counts.length;
  }

  async runOnce(): Promise<number> {
    if (!this.opts.leader.isLeader()) return this.opts.intervalMs;
    const tick = await this.tick();
    // Behind after an outage: catch up at once, a bounded window at a time.
    if (tick.behind) return 0;
    // Nothing finished: the next tick can wait longer (an idle replica stays under one
    // statement a second); it then adds the whole gap in one window, and a page view
    // brings the chart up to date anyway.
    return tick.finished === 0 ? Math.min(IDLE_TICKS * this.opts.intervalMs, (MAX_WINDOW_S - LAG_S) * 1000) : this.opts.intervalMs;
  }

  /**
   * The leader's tick: throughput only (it adds what finished since the last tick, so it
   * must run whether or not anyone looks). Counts cost up to a million index entries per
   * busy queue and status, so they are taken only while someone looks (`refresh()`).
   */
  async tick(): Promise<SnapshotTick> {
    const { finished, behind } = await this.addThroughput();
    if (performance.now() - this.lastPrune >= PRUNE_EVERY_MS) {
      await throughputPrune(this.opts.db, THROUGHPUT_DAYS, 1000);
      this.lastPrune = performance.now();
    }
    return { counted: 0, finished, behind };
  }

  /**
   * Counts and throughput brought up to date, by a replica serving a page while they are
   * stale (and by tests). Safe from several replicas at once: the throughput mark is read
   * FOR UPDATE and moved in the same transaction, so no finished row counts twice.
   */
  async refresh(): Promise<SnapshotTick> {
    const counted = await this.refreshCounts();
    const { finished, behind } = await this.addThroughput();
    return { counted, finished, behind };
  }

  private async addThroughput(): Promise<{ finished: number; behind: boolean }> {
    if (!this.seeded) {
      await marksSeedThroughput(this.opts.db, BACKFILL_S);
      this.seeded = true;
    }
    return inTransaction(this.opts.db, 'throughput', async (tx) => {
      const window = await marksLockThroughput(tx, LAG_S, MAX_WINDOW_S);
      if (!window) return { finished: 0, behind: false };
      const n = await throughputAdd(tx, window.from, window.to);
      return { finished: n, behind: Date.parse(window.to.replace(' ', 'T')) - Date.parse(window.from.replace(' ', 'T')) >= MAX_WINDOW_S * 1000 };
    });
  }

  /** (queue, status) rows with their capped counts; zero rows are left out. */
  private async counts(): Promise<CountRow[]> {
    const cap = this.opts.countCap ?? COUNT_CAP;
    const out: CountRow[] = [];
    for (const status of ACTIVE_STATUSES) {
      for (const queue of await jobsQueuesWithStatus(this.opts.db, status)) {
        // One past the cap tells "exactly the cap" from "more than the cap".
        const n = await jobsCountCapped(this.opts.db, { status, queue, cap: cap + 1 });
        if (n > 0) out.push({ queue, status, n: Math.min(n, cap), capped: n > cap });
      }
    }
    return out;
  }
}
