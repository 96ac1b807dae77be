/**
 * What the latest probe saw for the leader's sweeps: the probe (one statement per poll,
 * sent anyway) answers "is there a dead worker or an overdue job?", "does a workflow
 * row wait for the leader?" and "does a pending job have a cancel request?", so an idle
 * leader sends no sweep statement at all. Stale signals (no probe lately) count as "look",
 * except pending cancels: those are swept only when a probe saw them, as before the
 * sweep had a loop of its own.
 */
export class SweepSignals {
  private deadWorkers = true;
  private overdue = true;
  private seenAt = -Infinity;
  private workflows = true;
  private workflowsAt = -Infinity;
  private onWorkflows: (() => void) | undefined;
  private pendingCancels = false;
  private onCancels: (() => void) | undefined;

  constructor(private readonly maxAgeMs: number) {}

  update(seen: { deadWorkers: boolean; overdue: boolean; workflows?: boolean; pendingCancels?: boolean }): void {
    this.deadWorkers = seen.deadWorkers;
    this.overdue = seen.overdue;
    this.seenAt = performance.now();
    // A quiet heartbeat checked the workflow rows too (leader), so absent means none.
    this.workflows = seen.workflows ?? false;
    this.workflowsAt = this.seenAt;
    if (this.workflows) this.onWorkflows?.();
    // Absent (a quiet heartbeat, which checked them too): none.
    this.pendingCancels = seen.pendingCancels ?? false;
    if (this.pendingCancels) this.onCancels?.();
  }

  /** True once per sighting: a probe saw pending jobs with a cancel request since the last call. */
  takePendingCancels(): boolean {
    const seen = this.pendingCancels;
    this.pendingCancels = false;
    return seen;
  }

  /** Called when a probe sees pending cancels (the cancel-requests publisher wakes at once). */
  onPendingCancels(listener: () => void): void {
    this.onCancels = listener;
  }

  /** True when the sweep should run: something was seen, or nothing was looked at lately. */
  get worthSweeping(): boolean {
    return this.deadWorkers || this.overdue || performance.now() - this.seenAt > this.maxAgeMs;
  }

  /** Whether the latest probe saw workflow work; undefined when it is older than `maxAgeMs`. */
  workflowWork(maxAgeMs: number): boolean | undefined {
    return performance.now() - this.workflowsAt > maxAgeMs ? undefined : this.workflows;
  }

  /** Forgets what was seen (leadership changed: a follower's probe did not look). */
  forgetWorkflows(): void {
    this.workflowsAt = -Infinity;
  }

  /** Called when a probe sees workflow work (the workflow publisher wakes at once). */
  onWorkflowWork(listener: () => void): void {
    this.onWorkflows = listener;
  }
}
