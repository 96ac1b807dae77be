import { jitter } from '../backoff.js';

/**
 * Waits after a claim that found work but did not fill the channel: long enough that a
 * steady stream brings about BUSY_BATCH jobs per look (a claim costs 3 statements), never
 * longer than BUSY_REPOLL_MAX_MS (pickup latency is about half the wait), never shorter
 * than BUSY_REPOLL_MIN_MS. The first empty look then backs off from BUSY_REPOLL_MIN_MS.
 */
export const BUSY_BATCH = 100;
export const BUSY_REPOLL_MIN_MS = 10;
export const BUSY_REPOLL_MAX_MS = 50;
/** The wait while prefetch is more than half full; room freed cuts it short, so it is only a backstop. */
export const ROOM_WAIT_MS = 20;

export interface PollCadenceOptions {
  pollMs: number;
  random?: () => number;
  now?: () => number;
}

/**
 * When the ready-jobs publisher looks next, and when it probes (STYLE.md: a poll returns
 * its next delay). No I/O: the publisher tells it what a look found; the clock and the
 * jitter can be injected.
 *
 * - A full batch: look again at once (more is waiting).
 * - A partial batch: look again shortly, sized to the arrival rate.
 * - Nothing: back off 20, 40, 80 … ms after work flowed, then the poll interval plus
 *   0–10 % jitter — unless a scheduled job falls due sooner.
 * - Work waits but no queue may take it (rate, concurrency): the interval with jitter,
 *   or the next rate token if sooner.
 */
export class PollCadence {
  private readonly pollMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  /** Looks in a row that found nothing: the wait doubles from BUSY_REPOLL_MIN_MS to the poll interval. */
  private emptyLooks = Infinity;
  /** When the last claim that found work ended, to gauge the arrival rate. */
  private lastClaimAt: number | undefined;
  private lastProbeAt = -Infinity;
  /**
   * When the earliest scheduled job of a served queue falls due, as the last probe saw
   * it: a probe then promotes it, between regular probes. Infinity: none known (the next
   * regular probe looks).
   */
  private nextScheduledAt = Infinity;
  /** When the last probe made for a scheduled job (not the interval) was sent. */
  private lastEarlyProbeAt = -Infinity;

  constructor(opts: PollCadenceOptions) {
    this.pollMs = opts.pollMs;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * Whether this look starts with a probe: after an idle look, once a poll interval while
   * work flows (so an UPDATE of job_queues takes effect within one interval), or when a
   * scheduled job falls due.
   */
  probeNow(idle: boolean): boolean {
    const at = this.now();
    const early = this.earlyProbeDue(at);
    if (early) this.lastEarlyProbeAt = at;
    return idle || at - this.lastProbeAt >= this.pollMs || early;
  }

  /** The probe saw the earliest scheduled job of a served queue fall due in `ms` (Infinity: none). */
  scheduledIn(ms: number): void {
    this.nextScheduledAt = this.now() + ms;
  }

  /** A probe was answered. */
  probed(): void {
    this.lastProbeAt = this.now();
  }

  /**
   * The wait after a look that found nothing. Right after work flowed, looks come quickly
   * and back off (20, 40, 80 … ms: one probe statement each) so a steady stream is
   * picked up within milliseconds. Then the poll interval stretched by 0–10 %, so replicas
   * drift apart and an idle replica stays under one statement a second (the leader's
   * orphan check, one statement per dead-after span, fits in what the stretch saves),
   * while a job inserted at a random instant waits about half the interval.
   */
  emptyLook(): number {
    this.emptyLooks++;
    const { pollMs } = this;
    const backoff = BUSY_REPOLL_MIN_MS * 2 ** this.emptyLooks;
    if (backoff < pollMs) return backoff;
    const wait = Math.round(pollMs * (1 + this.random() * 0.1));
    // A scheduled job due sooner: wake then (one probe, one promote), not up to a poll late.
    const now = this.now();
    if (!this.earlyProbeDue(Math.max(now, this.nextScheduledAt))) return wait;
    return Math.max(BUSY_REPOLL_MIN_MS, Math.min(wait, Math.ceil(this.nextScheduledAt - now)));
  }

  /** Due work, but no queue may take any now: the interval, or the next rate token (`msUntilToken`) if sooner. */
  noneClaimable(msUntilToken: number): number {
    return Math.min(jitter(this.pollMs, this.random), msUntilToken);
  }

  /**
   * The wait after a claim of `claimed` jobs that had room for `room`. A full batch means
   * more is waiting: go again at once. A partial one means work is flowing: look again
   * shortly; empty looks then back off to the poll interval.
   */
  claimed(claimed: number, room: number): number {
    if (claimed === 0) {
      this.lastClaimAt = undefined;
      return this.emptyLook();
    }
    this.emptyLooks = 0;
    const now = this.now();
    const since = this.lastClaimAt === undefined ? undefined : now - this.lastClaimAt;
    this.lastClaimAt = now;
    if (claimed >= room) return 0;
    const perMs = since === undefined ? undefined : claimed / Math.max(1, since);
    const wait = perMs === undefined ? BUSY_REPOLL_MAX_MS / 2 : BUSY_BATCH / perMs;
    return Math.min(this.pollMs, BUSY_REPOLL_MAX_MS, Math.max(BUSY_REPOLL_MIN_MS, Math.round(wait)));
  }

  /**
   * A probe for a scheduled job falling due, besides the interval's, is due at `at`: at
   * most one a poll interval, so jobs scheduled close together cost no more probes than
   * the interval's (each then starts within one poll of its time, as a due job does).
   */
  private earlyProbeDue(at: number): boolean {
    return at >= this.nextScheduledAt && at - this.lastEarlyProbeAt >= this.pollMs;
  }
}
