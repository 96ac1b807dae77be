import type { Channel } from '../channel.js';
import type { ClaimSession } from '../db/claim-session.js';
import type { Database } from '../db/database.js';
import { jobsAdvanceKeyLines, jobsPromoteDue } from '../db/queries/claim-lanes.js';
import { leaseWrite } from '../db/queries/job-leases.js';
import { jobsMarkQueued, jobsSelectReady, type ClaimCursor, type ClaimedJob, type ReadyRow } from '../db/queries/jobs-claim.js';
import { jobsProbe, workersHeartbeatIfQuiet, type LeaderProbe, type QueueRow } from '../db/queries/probe.js';
import { queuesLockActive, queuesRegister } from '../db/queries/queues.js';
import { isDuplicateKeyError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import type { Leader } from '../leader/leader.js';
import { freeRoom, fullRoom, type HeldClaims, type Room, type RunnableJob } from '../room.js';
import { ClaimCursors, nextCursor } from './claim-cursors.js';
import { PollCadence, ROOM_WAIT_MS } from './poll-cadence.js';
import type { Pollable } from './poller.js';
import { QueueSettings } from './queue-settings.js';
import type { ScheduleSignals } from './schedule-signals.js';
import type { SweepSignals } from './sweep-signals.js';

/** Scheduled jobs one promote statement moves into lane 0; a probe sends at most 10. */
const PROMOTE_BATCH = 1000;

export interface ReadyJobsOptions {
  db: Database;
  /** Where claims run (autocommit off: three statements a claim). */
  claims: ClaimSession;
  channel: Channel<RunnableJob>;
  /** The consumer's room: how many claimed jobs it can still take, and when room was freed. */
  room: Room;
  worker: string;
  /** Served queues; empty = all. */
  queues: readonly string[];
  pollMs: number;
  deadAfterMs: number;
  defaultTimeoutMs: number;
  events: SluiceEvents;
  /** The heartbeat, so an idle tick can write it together with the probe. */
  heartbeat?: { dueInMs(): number; beaten(sentAt: number): void };
  /** While this replica leads, the probe also answers for the leader's sweeps. */
  leader?: Pick<Leader, 'isLeader'>;
  /** Where the probe leaves hints for the leader's sweeps (pending cancels among them). */
  signals?: SweepSignals;
  /** Where the probe leaves when the next schedule tick is due. */
  scheduleSignals?: ScheduleSignals;
  random?: () => number;
  /** Where a claim held open hands its transaction (the state writer); unset: never held. */
  heldClaims?: HeldClaims;
}

/**
 * Claims due jobs into the channel, never more than the consumer has room for.
 *
 * When the last claim found nothing it first sends one cheap probe (a single SELECT that
 * also refreshes queue settings); it claims only if the probe saw due work. While work
 * flows it claims directly, and still refreshes settings once a poll interval, so an
 * UPDATE of job_queues takes effect within one interval. When to look next is the
 * PollCadence's business; what each queue allows, the QueueSettings'.
 *
 * Per queue it claims at most: the channel's room, the queue's share of its cluster-wide
 * rate (rate_per_sec / live replicas serving it), and its cluster-wide concurrency cap
 * minus the jobs active anywhere (counted under a lock on the queue's row).
 */
export class ReadyJobsPublisher implements Pollable {
  readonly name = 'ready-jobs';
  private readonly settings: QueueSettings;
  private readonly cadence: PollCadence;
  private idle = true;
  private readonly cursors: ClaimCursors;
  /** Numbers this replica's leases: unique within a life (a new life resolves the old one's leases before it claims). */
  private leaseSeq = Date.now();
  /** The last look stopped because prefetch was more than half full. */
  private waitingForRoom = false;
  private wake: () => void = () => undefined;

  constructor(private readonly opts: ReadyJobsOptions) {
    this.settings = new QueueSettings(opts.queues);
    this.cadence = new PollCadence({ pollMs: opts.pollMs, random: opts.random });
    this.cursors = new ClaimCursors(opts.pollMs);
    opts.room.onRoomFreed(() => {
      if (this.roomFreed()) this.wake();
    });
  }

  wakeWith(wake: () => void): void {
    this.wake = wake;
  }

  async runOnce(): Promise<number> {
    const { channel, room } = this.opts;
    if (channel.isClosed) return this.opts.pollMs;
    // Prefetch counts every claimed job not yet started, wherever it waits. Refill at
    // half empty: one claim of many rows instead of many claims of a few.
    this.waitingForRoom = this.roomLow();
    // roomFreed() cuts this wait short; the timer is only a backstop.
    if (this.waitingForRoom) return ROOM_WAIT_MS;

    if (this.idle && (await this.quietHeartbeat())) return this.cadence.emptyLook();
    if (this.cadence.probeNow(this.idle)) {
      await this.probe();
      if (!this.settings.anyReady()) {
        this.idle = true;
        return this.cadence.emptyLook();
      }
    }

    const claimable = this.settings.claimable();
    if (claimable.length === 0) return this.cadence.noneClaimable(this.settings.msUntilRateToken());
    const space = freeRoom(channel, room);
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
      const runnable = runnableOf(job, job.timeoutMs ?? this.settings.timeoutMsOf(job.queue) ?? this.opts.defaultTimeoutMs, claimedAt);
      if (room.admit(runnable) && !channel.offer(runnable)) await channel.send(runnable);
    }
    return this.cadence.claimed(claimed.length, space);
  }

  /**
   * True once, when a look that waited for room may now claim: the consumer says after
   * each round of starts, and this wakes the poll loop. Claiming at once, not at the next
   * timer, lets the database work on the next batch while this process runs the current one.
   */
  private roomFreed(): boolean {
    if (!this.waitingForRoom || this.roomLow()) return false;
    this.waitingForRoom = false;
    return true;
  }

  /** Less than half the room of an empty consumer is free. */
  private roomLow(): boolean {
    return freeRoom(this.opts.channel, this.opts.room) < Math.ceil(fullRoom(this.opts.channel) / 2);
  }

  /** The leader's part of the probe, while this replica leads. */
  private leaderProbe(): LeaderProbe | undefined {
    const { leader, worker, deadAfterMs, defaultTimeoutMs } = this.opts;
    return leader?.isLeader() ? { worker, deadAfterMs, defaultTimeoutMs, graceMs: deadAfterMs } : undefined;
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
    if (!(await workersHeartbeatIfQuiet(db, { worker, queues, leader: this.leaderProbe(), known: this.settings.names() }))) return false;
    heartbeat.beaten(sentAt);
    this.opts.signals?.update({ deadWorkers: false, overdue: false });
    this.opts.scheduleSignals?.quiet();
    return true;
  }

  /**
   * One SELECT: queue settings, due work, and hints for the sweeps and schedules. Then
   * registers queues seen for the first time, promotes due scheduled jobs and repairs key
   * lines, when the probe says so.
   */
  private async probe(): Promise<void> {
    const { db, queues, deadAfterMs } = this.opts;
    const probe = await jobsProbe(db, { queues, deadAfterMs, leader: this.leaderProbe(), known: this.settings.names() });
    this.opts.signals?.update(probe);
    this.opts.scheduleSignals?.seen(probe.schedules);
    const rows = [...probe.queues];
    if (probe.newQueues.length > 0) {
      await queuesRegister(db, probe.newQueues);
      for (const name of probe.newQueues) rows.push({ name, paused: false, ratePerSec: null, concurrency: null, timeoutMs: null, ready: true });
    }
    await this.promoteDue(probe.queues);
    if (probe.keyLinesOpen) await jobsAdvanceKeyLines(db, undefined);
    this.settings.update(rows, probe.liveWorkerQueues);
    this.cadence.probed();
  }

  /**
   * Moves the due scheduled jobs of served queues into lane 0 (in bounded batches; what is
   * left waits for the next probe), marks those queues ready, and notes when the next
   * scheduled job falls due.
   */
  private async promoteDue(queues: QueueRow[]): Promise<void> {
    const due: QueueRow[] = [];
    let nextInMs = Infinity;
    for (const q of queues) {
      if (!this.settings.serves(q.name) || q.scheduledInMs == null) continue;
      if (q.scheduledInMs <= 0) due.push(q);
      else nextInMs = Math.min(nextInMs, q.scheduledInMs);
    }
    this.cadence.scheduledIn(nextInMs);
    if (due.length === 0) return;
    const names = due.map((q) => q.name);
    let moved = 0;
    for (let i = 0, got = PROMOTE_BATCH; i < 10 && got === PROMOTE_BATCH; i++) moved += got = await jobsPromoteDue(this.opts.db, names, PROMOTE_BATCH);
    if (moved > 0) for (const q of due) q.ready = true;
  }

  /** Whether a claim may be held open (see HeldClaims): enough jobs, each holdable, no row parked, no capped queue. */
  private holdable(out: readonly ReadyRow[], parked: number, capped: readonly string[]): boolean {
    return out.length >= HOLD_MIN_JOBS && parked === 0 && capped.length === 0 && out.every(holdable);
  }

  private async claim(queues: readonly QueueRow[], room: number): Promise<{ claimed: ClaimedJob[]; parked: number }> {
    const { claims, worker } = this.opts;
    const started = performance.now();
    const cursors = new Map<string, ClaimCursor | undefined>();
    let parked = 0;
    const claimed = await claims.transaction('jobsClaim', async (tx, keepOpen) => {
      const capped = queues.filter((q) => q.concurrency != null).map((q) => q.name);
      const active = await queuesLockActive(tx, capped);
      const out: ReadyRow[] = [];
      const keys = new Set<string>();
      const park = { parked: [] as number[], next: [] as number[] };
      let left = room;
      for (const q of queues) {
        if (left <= 0) break;
        let budget = Math.min(left, this.settings.tokens(q.name));
        if (q.concurrency != null) budget = Math.min(budget, q.concurrency - (active.get(q.name) ?? 0));
        if (budget <= 0) continue;
        const rows = await jobsSelectReady(tx, q.name, budget, this.cursors.of(q.name, started));
        cursors.set(q.name, nextCursor(rows, budget));
        sortRows(rows, out, keys, park);
        left = room - out.length;
      }
      parked = park.parked.length + park.next.length;
      const held = this.opts.heldClaims;
      if (held?.canHoldMore() && this.holdable(out, parked, capped) && this.opts.room.endsWithin?.(out.length, held.holdMs / 2)) {
        // Quick jobs: the claim stays open and each row is written once, with its outcome.
        // The lease is committed before any of them can start (a crash leaves it behind).
        const ids = out.map((j) => j.id);
        const batch = ++this.leaseSeq;
        // A write that failed may have landed all the same.
        await leaseWrite(this.opts.db, { worker, batch, ids }).catch((err: unknown) => {
          held.leaseLeftBehind();
          throw err;
        });
        held.open({ claim: keepOpen(), ids, batch, claimedAt: started });
        return out;
      }
      if (out.length > 0 || parked > 0) await jobsMarkQueued(tx, worker, out.map((j) => j.id), park);
      // A line whose next was just taken gets its following row as next.
      const advance = out.filter((j) => j.nextInLine && j.concurrencyKey !== null).map((j) => ({ key: j.concurrencyKey as string, queue: j.queue }));
      if (advance.length > 0) await jobsAdvanceKeyLines(tx, advance);
      // The rows themselves go on (their two sorting fields with them): no copy per job.
      return out;
    });
    this.cursors.committed(cursors, started);
    const durationMs = performance.now() - started;
    // Each queue's rows are contiguous: the loop above took them one queue after another.
    for (let from = 0; from < claimed.length; ) {
      const queue = claimed[from]!.queue;
      let to = from + 1;
      while (to < claimed.length && claimed[to]!.queue === queue) to++;
      const jobs = from === 0 && to === claimed.length ? claimed : claimed.slice(from, to);
      this.settings.took(queue, jobs.length);
      this.opts.events.emit('jobs:claimed', { queue, jobs, durationMs });
      from = to;
    }
    return { claimed, parked };
  }
}

/**
 * Fewest jobs a held claim takes. Holding costs two statements a claim (the lease's
 * INSERT and DELETE) and outcome statements are no longer shared between claims: at 120
 * jobs a claim a steady 2,000 jobs/s went from 0.036 to 0.051 statements a job. At 200 or
 * more the claims' statements stay at 0.025 a job at most.
 */
const HOLD_MIN_JOBS = 200;

/**
 * A job whose claim may stay open while it runs: one whose claim and outcome writes are
 * only the row's own. Keyed jobs (their line moves on), children (their outcome counts
 * into the parent), parents, deferred payloads (read fenced on `queued`) and runs claimed
 * before (their attempt is recorded before the handler) take the usual path.
 */
function holdable(j: ReadyRow): boolean {
  return j.concurrencyKey === null && !j.reclaimed && !j.resumed && j.childCount === 0 && !j.hasParent && !j.payloadDeferred && !j.nextInLine;
}

/**
 * The claimed row becomes the job the channel carries, in place: a job is one object from
 * its row to its outcome, not a copy per stage.
 */
function runnableOf(job: ClaimedJob, effectiveTimeoutMs: number, claimedAt: number): RunnableJob {
  const runnable = job as ClaimedJob & Partial<Pick<RunnableJob, 'effectiveTimeoutMs' | 'claimedAt'>>;
  runnable.effectiveTimeoutMs = effectiveTimeoutMs;
  runnable.claimedAt = claimedAt;
  return runnable as RunnableJob;
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
