/**
 * What the latest probe saw for the leader's sweeps: the probe (one statement per poll,
 * sent anyway) answers "is there a dead worker or an overdue job?", so an idle leader
 * sends no sweep statement at all. Stale signals (no probe lately) count as "look".
 */
export class SweepSignals {
  private deadWorkers = true;
  private overdue = true;
  private seenAt = -Infinity;

  constructor(private readonly maxAgeMs: number) {}

  update(seen: { deadWorkers: boolean; overdue: boolean }): void {
    this.deadWorkers = seen.deadWorkers;
    this.overdue = seen.overdue;
    this.seenAt = performance.now();
  }

  /** True when the sweep should run: something was seen, or nothing was looked at lately. */
  get worthSweeping(): boolean {
    return this.deadWorkers || this.overdue || performance.now() - this.seenAt > this.maxAgeMs;
  }
}
