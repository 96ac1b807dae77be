import type { Database } from '../db/database.js';
import { jobsSetProgress, type RunRef } from '../db/queries/jobs-run.js';
import type { Logger } from '../observability/logger.js';

/**
 * `ctx.progress(pct)` for one run, throttled: at most one write per `intervalMs`, the
 * latest value wins, so a chatty handler cannot flood the database.
 */
export class ProgressReporter {
  private last = -Infinity;
  private latest: number | undefined;
  private written: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly worker: string,
    private readonly run: RunRef,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {}

  report(pct: number): void {
    if (this.stopped || typeof pct !== 'number' || !Number.isFinite(pct)) return;
    this.latest = Math.min(100, Math.max(0, Math.round(pct)));
    const wait = this.last + this.intervalMs - performance.now();
    if (wait <= 0) this.write();
    else this.timer ??= setTimeout(() => this.write(), wait);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private write(): void {
    this.timer = undefined;
    const pct = this.latest;
    if (this.stopped || pct === undefined || pct === this.written) return;
    this.last = performance.now();
    this.written = pct;
    jobsSetProgress(this.db, this.worker, this.run, pct).catch((err: unknown) => {
      this.logger.debug({ job_id: this.run.id, err: String(err) }, 'progress not written');
    });
  }
}
