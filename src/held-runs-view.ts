import type { HeldJobChange } from './db/queries/jobs-control.js';
import type { RunRef } from './db/queries/jobs-run.js';

/**
 * What the held-jobs check sees of the consumer: the runs this replica holds, and a way to
 * pass on what the database says changed for them (a cancel requested, a row taken away).
 * Declared beside the channel, so that publisher needs no consumer type.
 */
export interface HeldRunsView {
  /** Runs queued or running here, each as (id, attempts). */
  heldRuns(): RunRef[];
  /** Resolves once cancels of runs not started yet are recorded. */
  applyChanges(changes: readonly HeldJobChange[]): Promise<void>;
}
