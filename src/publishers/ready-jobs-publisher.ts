// Over 300 lines: claiming, queue settings (cache and token buckets) and the poll cadence
// still share this file; splitting them is open work (issue #12).
import { jitter } from '../backoff.js';
import type { Channel } from '../channel.js';
import type { RunnableJob } from '../consumers/job-runner.js';
import type { ClaimSession } from '../db/claim-session.js';
import type { Database } from '../db/database.js';
import { jobsAdvanceKeyLines, jobsPromoteDue } from '../db/queries/claim-lanes.js';
import { jobsMarkQueued, jobsSelectReady, type ClaimCursor, type ClaimedJob, type ReadyRow } from '../db/queries/jobs-claim.js';
import { jobsCancelPending } from '../db/queries/jobs-control.js';
import { jobsProbe, workersHeartbeatIfQuiet, type LeaderProbe, type QueueRow } from '../db/queries/probe.js';
import { queuesLockActive, queuesRegister } from '../db/queries/queues.js';
import { isDuplicateKeyError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import { INLINE_PAYLOAD_BYTES, QUEUED_PAYLOAD_BYTES } from '../limits.js';
import { TokenBucket } from '../token-bucket.js';
import type { Pollable } from './poller.js';
import type { ScheduleSignals } from './schedule-signals.js';
import type { SweepSignals } from './sweep-signals.js';

/**
 * Waits after a claim that found work but did not fill the channel: long enough that a
 * steady stream brings about BUSY_BATCH jobs per look (a claim costs 3 statements), never
 * longer than BUSY_REPOLL_MAX_MS (pickup latency is about half the wait), never shorter
 * than BUSY_REPOLL_MIN_MS. The first empty look then backs off from BUSY_REPOLL_MIN_MS.
 */
export const BUSY_BATCH = 100;
export const BUSY_REPOLL_MIN_MS = 10;
export const BUSY_REPOLL_MAX_MS = 50;
/** Pending jobs one cancel statement ends. */
const CANCEL_BATCH = 1000;
/** Scheduled jobs one promote statement moves into lane 0; a probe sends at most 10. */
const PROMOTE_BATCH = 1000;

export interface ReadyJobsOptions {
  db: Database;
  /** Where claims run (autocommit off: three statements a claim). */
  claims: ClaimSession;
  channel: Channel<RunnableJob>;
  worker: string;
  /** Served queues; empty = all. */
  queues: readonly string[];
  pollMs: number;
  deadAfterMs: number;
  defaultTimeoutMs: number;
  events: SluiceEvents;
  /** Registers a claimed job with the runner; false drops a duplicate. */
  admit: (job: RunnableJob) => boolean;
  /** Claimed jobs not yet started (the channel and the runner's token stage). */
  queued: () => number;
  /** Payload bytes those jobs carry. */
  queuedBytes?: () => number;
  /** The heartbeat, so an idle tick can write it together with the probe. */
  heartbeat?: { dueInMs(): number; beaten(sentAt: number): void };
  /** The leader's part of the probe, while this replica leads. */
  leaderProbe?: () => LeaderProbe | undefined;
  /** Where the probe leaves hints for the leader's sweeps. */
  signals?: SweepSignals;
  /** Where the probe leaves when the next schedule tick is due. */
  scheduleSignals?: ScheduleSignals;
  random?: () => number;
}

/**
 * Claims due jobs into the channel, never more than it has room for.
 *
 * When the last claim found nothing it first sends one cheap probe (a single SELECT that
 * also refreshes queue settings); it claims only if the probe saw due work. While work
 * flows it claims directly, and still refreshes settings once a poll interval, so an
 * UPDATE of job_queues takes effect within one interval.
 *
 * Per queue it claims at most: the channel's room, the queue's share of its cluster-wide
 * rate (rate_per_sec / live replicas serving it), and its cluster-wide concurrency cap
 * minus the jobs active anywhere (counted under a lock on the queue's row).
 */
export class ReadyJobsPublisher implements Pollable {
  readonly name = 'ready-jobs';
  private settings = new Map<string, QueueRow>();
  private readonly buckets = new Map<string, TokenBucket>();
  private lastProbeAt = -Infinity;
  private idle = true;
  /** Looks in a row that found nothing: the wait doubles from BUSY_REPOLL_MIN_MS to the poll interval. */
  private emptyLooks = Infinity;
  /** When the last claim that found work began (performance.now()), to gauge the arrival rate. */
  private lastClaimAt: number | undefined;
  private rotation = 0;
  private liveWorkerQueues: string[] = [];
  /**
   * Per queue, where the last full claim stopped and when this run of such claims began.
   * The next claim starts there instead of walking the entries of jobs just claimed; a
   * short claim, an error, or one poll interval sends the next look back to the head, so
   * a job that sorts earlier (a more urgent one, one handed back) waits at most that long.
   */
  private readonly cursors = new Map<string, { at: ClaimCursor; since: number }>();
  /** The last look stopped because prefetch was more than half full. */
  private waitingForRoom = false;
  /**
   * performance.now() when the earliest scheduled job of a served queue falls due, as the
   * last probe saw it: a probe then promotes it, between regular probes. Infinity: none
   * known (the next regular probe looks).
   */
  private nextScheduledAt = Infinity;
  /** When the last probe made for a scheduled job (not the interval) was sent. */
  private lastEarlyProbeAt = -Infinity;

  constructor(private readonly opts: ReadyJobsOptions) {}

  async runOnce(): Promise<number> {
    const { channel, pollMs } = this.opts;
    const random = this.opts.random ?? Math.random;
    if (channel.isClosed) return pollMs;
    // Prefetch counts every claimed job not yet started, wherever it waits. Refill at
    // half empty: one claim of many rows instead of many claims of a few.
    this.waitingForRoom = this.room() < Math.ceil(this.fullRoom() / 2);
    // roomFreed() cuts this wait short; the timer is only a backstop.
    if (this.waitingForRoom) return 20;

    if (this.idle && (await this.quietHeartbeat())) return this.emptyLook();
    // A scheduled job known to fall due before the next regular probe is promoted on time.
    const lookAt = performance.now();
    const early = this.earlyProbeDue(lookAt);
    if (early) this.lastEarlyProbeAt = lookAt;
    if (this.idle || lookAt - this.lastProbeAt >= pollMs || early) {
      await this.probe();
      if (![...this.settings.values()].some((q) => q.ready && this.serves(q.name) && !q.paused)) {
        this.idle = true;
        return this.emptyLook();
      }
    }

    const claimable = this.claimableQueues();
    if (claimable.length === 0) {
      return Math.min(jitter(pollMs, random), this.msUntilRateToken());
    }
    const space = this.room();
    const claimedAt = performance.now();
    let claimed: ClaimedJob[];
    let parked: number;
    try {
      ({ claimed, parked } = await this.claim(claimable, space));
    } catch (err) {
      this.cursors.clear();
      // Another replica took the same concurrency key in the same instant: try again now.
      if (isDuplicateKeyError(err)) return 0;
      throw err;
    }
    // Parking moved key-blocked rows out of lane 0: look again at once for what they hid.
    if (claimed.length === 0 && parked > 0) return 0;
    this.idle = claimed.length === 0;
    for (const job of claimed) {
      const runnable: RunnableJob = {
        ...job,
        effectiveTimeoutMs: job.timeoutMs ?? this.settings.get(job.queue)?.timeoutMs ?? this.opts.defaultTimeoutMs,
        claimedAt,
      };
      if (this.opts.admit(runnable)) await channel.send(runnable);
    }
    if (claimed.length === 0) {
      this.lastClaimAt = undefined;
      return this.emptyLook();
    }
    // A full batch means more is waiting: go again at once. A partial one means work is
    // flowing: look again shortly; empty looks then back off to the poll interval.
    this.emptyLooks = 0;
    const now = performance.now();
    const since = this.lastClaimAt === undefined ? undefined : now - this.lastClaimAt;
    this.lastClaimAt = now;
    if (claimed.length >= space) return 0;
    const perMs = since === undefined ? undefined : claimed.length / Math.max(1, since);
    const wait = perMs === undefined ? BUSY_REPOLL_MAX_MS / 2 : BUSY_BATCH / perMs;
    return Math.min(pollMs, BUSY_REPOLL_MAX_MS, Math.max(BUSY_REPOLL_MIN_MS, Math.round(wait)));
  }

  /**
   * True once, when a look that waited for room may now claim: the runner asks after each
   * round of starts and pokes the poll loop. Claiming at once, not at the next timer, lets
   * the database work on the next batch while this process runs the current one.
   */
  roomFreed(): boolean {
    if (!this.waitingForRoom || this.room() < Math.ceil(this.fullRoom() / 2)) return false;
    this.waitingForRoom = false;
    return true;
  }

  /**
   * How many jobs a claim may take now: the channel's free places, less the claimed jobs
   * still waiting elsewhere, and no more than the payload budget can hold if each carried
   * the largest inline payload (memory stays bounded whatever the rows hold).
   */
  private room(): number {
    const { channel } = this.opts;
    const byBytes = Math.floor((QUEUED_PAYLOAD_BYTES - (this.opts.queuedBytes?.() ?? 0)) / INLINE_PAYLOAD_BYTES);
    return Math.max(0, Math.min(channel.room(), channel.capacity - this.opts.queued(), byBytes));
  }

  /** The room of an empty replica. */
  private fullRoom(): number {
    return Math.min(this.opts.channel.capacity, Math.floor(QUEUED_PAYLOAD_BYTES / INLINE_PAYLOAD_BYTES));
  }

  /**
   * Idle polls cost one statement each, and the heartbeat rides on one of them: when it
   * is due before the next poll, one UPDATE writes it if nothing waits (the usual idle
   * case). Returns true when that settled this poll.
   */
  private async quietHeartbeat(): Promise<boolean> {
    const { heartbeat, db, worker, queues, pollMs } = this.opts;
    if (!heartbeat || heartbeat.dueInMs() > pollMs) return false;
    const sentAt = performance.now();
    if (!(await workersHeartbeatIfQuiet(db, { worker, queues, leader: this.opts.leaderProbe?.(), known: [...this.settings.keys()] }))) return false;
    heartbeat.beaten(sentAt);
    this.opts.signals?.update({ deadWorkers: false, overdue: false });
    this.opts.scheduleSignals?.quiet();
    return true;
  }

  /**
   * The wait after a look that found nothing. Right after work flowed, looks come quickly
   * and back off (20, 40, 80 … ms: one probe statement each) so a steady stream is
   * picked up within milliseconds. Then the poll interval stretched by 0–5 %, so replicas
   * drift apart and an idle replica stays under one statement a second, while a job
   * inserted at a random instant waits about half the interval.
   */
  private emptyLook(): number {
    this.emptyLooks++;
    const { pollMs } = this.opts;
    const backoff = BUSY_REPOLL_MIN_MS * 2 ** this.emptyLooks;
    if (backoff < pollMs) return backoff;
    const wait = Math.round(pollMs * (1 + (this.opts.random ?? Math.random)() * 0.05));
    // A scheduled job due sooner: wake then (one probe, one promote), not up to a poll late.
    const now = performance.now();
    if (!this.earlyProbeDue(Math.max(now, this.nextScheduledAt))) return wait;
    return Math.max(BUSY_REPOLL_MIN_MS, Math.min(wait, Math.ceil(this.nextScheduledAt - now)));
  }

  /**
   * A probe for a scheduled job falling due, besides the interval's, is due at `at`: at
   * most one a poll interval, so jobs scheduled close together cost no more probes than
   * the interval's (each then starts within one poll of its time, as a due job does).
   */
  private earlyProbeDue(at: number): boolean {
    return at >= this.nextScheduledAt && at - this.lastEarlyProbeAt >= this.opts.pollMs;
  }

  private serves(queue: string): boolean {
    return this.opts.queues.length === 0 || this.opts.queues.includes(queue);
  }

  private async probe(): Promise<void> {
    const { db, queues, deadAfterMs } = this.opts;
    const probe = await jobsProbe(db, { queues, deadAfterMs, leader: this.opts.leaderProbe?.(), known: [...this.settings.keys()] });
    this.opts.signals?.update(probe);
    this.opts.scheduleSignals?.seen(probe.schedules);
    const settings = new Map(probe.queues.map((q) => [q.name, q]));
    if (probe.newQueues.length > 0) {
      await queuesRegister(db, probe.newQueues);
      for (const name of probe.newQueues) {
        settings.set(name, { name, paused: false, ratePerSec: null, concurrency: null, timeoutMs: null, ready: true });
      }
    }
    await this.promoteDue(probe.queues);
    if (probe.keyLinesOpen) await jobsAdvanceKeyLines(db, undefined);
    if (probe.pendingCancels) {
      // Leader only, in bounded batches; what is left waits for the next probe.
      let n = 0;
      for (let i = 0, got = CANCEL_BATCH; i < 10 && got === CANCEL_BATCH; i++) n += got = await jobsCancelPending(db, CANCEL_BATCH);
      if (n > 0) this.opts.events.emit('sweep:done', { sweep: 'cancelled', count: n });
    }
    this.settings = settings;
    this.liveWorkerQueues = probe.liveWorkerQueues;
    this.lastProbeAt = performance.now();
    this.configureBuckets();
  }

  /**
   * Moves the due scheduled jobs of served queues into lane 0 (in bounded batches; what is
   * left waits for the next probe), marks those queues ready, and notes when the next
   * scheduled job falls due.
   */
  private async promoteDue(queues: QueueRow[]): Promise<void> {
    const now = performance.now();
    const due: QueueRow[] = [];
    this.nextScheduledAt = Infinity;
    for (const q of queues) {
      if (!this.serves(q.name) || q.scheduledInMs == null) continue;
      if (q.scheduledInMs <= 0) due.push(q);
      else this.nextScheduledAt = Math.min(this.nextScheduledAt, now + q.scheduledInMs);
    }
    if (due.length === 0) return;
    const names = due.map((q) => q.name);
    let moved = 0;
    for (let i = 0, got = PROMOTE_BATCH; i < 10 && got === PROMOTE_BATCH; i++) moved += got = await jobsPromoteDue(this.opts.db, names, PROMOTE_BATCH);
    if (moved > 0) for (const q of due) q.ready = true;
  }

  /** Each replica gets an equal share of a queue's cluster-wide rate. */
  private configureBuckets(): void {
    for (const q of this.settings.values()) {
      if (q.ratePerSec == null) {
        this.buckets.delete(q.name);
        continue;
      }
      const serving = Math.max(
        1,
        this.liveWorkerQueues.filter((list) => list === '*' || list.split(',').includes(q.name)).length,
      );
      const share = q.ratePerSec / serving;
      // A quarter second's worth: starts spread over the second, and no one-second window
      // sees more than 1.25 × the rate. At least one job, and two where the share allows,
      // so a claim loop slowed by a busy machine does not lose tokens to overflow.
      const burst = Math.max(1, Math.min(2, share), share / 4);
      const bucket = this.buckets.get(q.name);
      if (bucket) bucket.configure(share, burst);
      else this.buckets.set(q.name, new TokenBucket(share, burst));
    }
  }

  private claimableQueues(): QueueRow[] {
    const list = [...this.settings.values()].filter(
      (q) => this.serves(q.name) && !q.paused && (q.concurrency == null || q.concurrency > 0) && (this.buckets.get(q.name)?.available() ?? 1) > 0,
    );
    // Rotate the starting queue so one busy queue cannot starve the others.
    const start = list.length === 0 ? 0 : this.rotation++ % list.length;
    return [...list.slice(start), ...list.slice(0, start)];
  }

  private cursorOf(queue: string, now: number): ClaimCursor | undefined {
    const cursor = this.cursors.get(queue);
    if (cursor && now - cursor.since < this.opts.pollMs) return cursor.at;
    this.cursors.delete(queue);
    return undefined;
  }

  private msUntilRateToken(): number {
    let ms = Infinity;
    for (const b of this.buckets.values()) ms = Math.min(ms, Math.max(5, b.msUntilToken()));
    return ms;
  }

  private async claim(queues: readonly QueueRow[], room: number): Promise<{ claimed: ClaimedJob[]; parked: number }> {
    const { claims, worker } = this.opts;
    const started = performance.now();
    const cursors = new Map<string, ClaimCursor | undefined>();
    let parked = 0;
    const claimed = await claims.transaction('jobsClaim', async (tx) => {
      const capped = queues.filter((q) => q.concurrency != null).map((q) => q.name);
      const active = await queuesLockActive(tx, capped);
      const out: ReadyRow[] = [];
      const keys = new Set<string>();
      const park = { parked: [] as number[], next: [] as number[] };
      let left = room;
      for (const q of queues) {
        if (left <= 0) break;
        let budget = left;
        const bucket = this.buckets.get(q.name);
        if (bucket) budget = Math.min(budget, bucket.available());
        if (q.concurrency != null) budget = Math.min(budget, q.concurrency - (active.get(q.name) ?? 0));
        if (budget <= 0) continue;
        const rows = await jobsSelectReady(tx, q.name, budget, this.cursorOf(q.name, started));
        cursors.set(q.name, nextCursor(rows, budget));
        sortRows(rows, out, keys, park);
        left = room - out.length;
      }
      parked = park.parked.length + park.next.length;
      if (out.length > 0 || parked > 0) await jobsMarkQueued(tx, worker, out.map((j) => j.id), park);
      // A line whose next was just taken gets its following row as next.
      const advance = out.filter((j) => j.nextInLine && j.concurrencyKey !== null).map((j) => ({ key: j.concurrencyKey as string, queue: j.queue }));
      if (advance.length > 0) await jobsAdvanceKeyLines(tx, advance);
      return out.map(({ blocked: _b, nextInLine: _n, ...job }) => job);
    });
    for (const [queue, at] of cursors) {
      if (!at) this.cursors.delete(queue);
      else this.cursors.set(queue, { at, since: this.cursors.get(queue)?.since ?? started });
    }
    const byQueue = new Map<string, ClaimedJob[]>();
    for (const job of claimed) {
      this.buckets.get(job.queue)?.take(1);
      const list = byQueue.get(job.queue) ?? [];
      list.push(job);
      byQueue.set(job.queue, list);
    }
    const durationMs = performance.now() - started;
    for (const [queue, jobs] of byQueue) this.opts.events.emit('jobs:claimed', { queue, jobs, durationMs });
    return { claimed, parked };
  }
}

/**
 * Where the next claim of a queue may start: after the last row, if the claim was full
 * (more is likely waiting) and had no keyed job (the others of its key, and keys freed
 * meanwhile, sit behind it: the next look must start at the head to see them).
 */
function nextCursor(rows: readonly ClaimedJob[], asked: number): ClaimCursor | undefined {
  const last = rows.at(-1);
  if (!last || rows.length < asked || rows.some((r) => r.concurrencyKey !== null)) return undefined;
  return { priority: last.priority, runAt: last.runAt, id: last.id };
}

/**
 * Sorts one queue's looked-at rows: jobs to take go to `out`; rows whose key is held go
 * to `park` — the first of each key line seen here becomes its next unless the line has
 * one that comes first, the rest are parked behind it. A second row of a key taken in
 * this claim is left as it is: the next look sees it blocked.
 */
function sortRows(rows: readonly ReadyRow[], out: ReadyRow[], keys: Set<string>, park: { parked: number[]; next: number[] }): void {
  const lines = new Set<string>();
  for (const row of rows) {
    if (row.blocked !== 0) {
      const line = JSON.stringify([row.concurrencyKey, row.queue]);
      if (row.blocked === 2 || lines.has(line)) park.parked.push(row.id);
      else park.next.push(row.id);
      lines.add(line);
      continue;
    }
    // Two due jobs with one key: the first goes, the other waits for the key.
    if (row.concurrencyKey !== null) {
      if (keys.has(row.concurrencyKey)) continue;
      keys.add(row.concurrencyKey);
    }
    out.push(row);
  }
}
