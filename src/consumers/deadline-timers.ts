/** What a deadline timer needs to see of a run. */
export interface TimedRun {
  state: string;
  /** performance.now() past which the run is dead; cleared when it settles. */
  deadline?: number;
  timer?: NodeJS.Timeout;
}

/**
 * Deadline timers are armed in one pass after the current tick: most short runs have
 * settled by then and never cost a timer.
 */
export class DeadlineTimers<R extends TimedRun> {
  private unarmed: R[] = [];

  constructor(
    private readonly expire: (run: R) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Sets the run's deadline `timeoutMs` from now; its timer follows after this tick. */
  start(run: R, timeoutMs: number): void {
    run.deadline = this.now() + timeoutMs;
    this.unarmed.push(run);
    if (this.unarmed.length > 1) return;
    setImmediate(() => {
      const now = this.now();
      for (const r of this.unarmed.splice(0)) {
        if (r.state !== 'running' || r.deadline === undefined) continue;
        r.timer = setTimeout(() => this.expire(r), Math.max(0, r.deadline - now));
      }
    });
  }

  /** The run settled: no deadline, no timer. */
  clear(run: R): void {
    run.deadline = undefined;
    clearTimeout(run.timer);
  }
}
