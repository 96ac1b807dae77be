import type { ClaimedJob } from './db/queries/jobs-claim.js';

export type RunOutcome = 'done' | 'retry' | 'failed' | 'cancelled' | 'timed_out' | 'handed_back' | 'lost' | 'waiting';

/** Everything the daemon reports; logs and metrics subscribe here. */
export interface SluiceEventMap {
  'jobs:claimed': { queue: string; jobs: readonly ClaimedJob[]; durationMs: number };
  'job:started': { job: ClaimedJob; attempt: number; limiterWaitMs: number };
  'job:finished': { job: ClaimedJob; attempt: number; outcome: RunOutcome; durationMs: number; error?: string };
  'job:cancelled-before-start': { job: ClaimedJob };
  /** A claimed job that could not run at all (payload too large, counters at their limit). */
  'job:refused': { job: ClaimedJob; error: string };
  'jobs:handed-back': { count: number; reason: string };
  'sweep:done': { sweep: 'rescued' | 'requeued' | 'timed_out' | 'cancelled' | 'pruned'; count: number };
  'loop:error': { loop: string; error: Error; failures: number };
  'leader:changed': { leader: boolean };
  'db:health': { healthy: boolean };
  /** One due schedule handled in a committed transaction: the ticks made (UTC text) and those skipped. */
  'schedule:ticked': {
    scheduleId: number;
    name: string;
    ticks: readonly string[];
    /** Per tick made: ms from its time to the transaction that made it. */
    lateMs: readonly number[];
    /** A tick made later than this counts as late. */
    lateAfterMs: number;
    /** Jobs inserted (ticks minus duplicates). */
    made: number;
    skipped: { overlap: number; catchUp: number; duplicate: number };
    next: string | null;
  };
  /** A schedule row set aside (bad cron or time zone, no future tick): last_error says why. */
  'schedule:invalid': { scheduleId: number; name: string; error: string };
  /**
   * Waiting parents released to pending: by the transaction of the child that ended last
   * (or of the parent's own park), or by the leader when the seal or the approval came last.
   */
  'workflow:released': { count: number; by: 'child' | 'leader' };
  /** A waiting parent failed at once because a child failed or was cancelled (policy 'fail'). */
  'workflow:failed-fast': { parentId: number; childId: number };
  /** Waiting jobs ended by the leader: cancel requested, or wait_deadline passed. */
  'workflow:waiting-ended': { reason: 'cancelled' | 'deadline'; count: number };
  /** Rows a cascade changed: cancel requests pushed to children, or paused set on them; pending children cancelled. */
  'workflow:cascaded': { kind: 'cancel' | 'pause' | 'cancelled_pending'; count: number };
  /** The reconciler found a waiting parent's counters off and rewrote them from its children. */
  'workflow:reconciled': { parentId: number; before: { done: number; failed: number }; after: { done: number; failed: number } };
}

type Listener<K extends keyof SluiceEventMap> = (payload: SluiceEventMap[K]) => void;

/** A typed event stream. Emitting never throws: a failing listener is reported on stderr and skipped. */
export class SluiceEvents {
  private readonly listeners = new Map<keyof SluiceEventMap, Array<Listener<keyof SluiceEventMap>>>();

  on<K extends keyof SluiceEventMap>(event: K, listener: Listener<K>): void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as Listener<keyof SluiceEventMap>);
    this.listeners.set(event, list);
  }

  emit<K extends keyof SluiceEventMap>(event: K, payload: SluiceEventMap[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(payload);
      } catch (err) {
        process.stderr.write(`sluice: listener for ${event} threw: ${String(err)}\n`);
      }
    }
  }
}
