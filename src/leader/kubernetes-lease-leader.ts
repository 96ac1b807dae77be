import type { Logger } from 'pino';
import { coerceError } from '../errors.js';
import type { Leader } from './leader.js';
import { Leadership, silentLogger, withJitter } from './leadership.js';
import type { LeaseRecord, LeaseStore, StoredLease } from './lease-store.js';

export interface KubernetesLeaseLeaderOptions {
  /** The Lease record: a KubernetesLeaseStore in a cluster, an in-memory one in tests. */
  store: LeaseStore;
  /** Written as the Lease's holderIdentity: this replica's worker id (the pod name). */
  identity: string;
  /**
   * How long a lease stays valid without renewal, in ms. Default 15000 (client-go's).
   * Written to the Lease rounded up to whole seconds; at least 1000.
   */
  leaseDurationMs?: number;
  /**
   * Time between campaign rounds in ms: the leader renews this often, the others check
   * this often (plus up to 20% jitter). Default 2000 (client-go's RetryPeriod).
   * Must be below leaseDurationMs, so a leader gets several tries before its lease runs out.
   */
  renewIntervalMs?: number;
  /**
   * One store call is aborted after this many ms. Default leaseDurationMs: an answer later
   * than that cannot save the lease (the local deadline has already ended leadership).
   */
  requestTimeoutMs?: number;
  /** Milliseconds since the epoch; injected by tests. Default `Date.now`. */
  clock?: () => number;
  logger?: Logger;
}

/** What one campaign round did; returned by `runOnce()` for tests and logs. */
export type LeaseRound =
  | { action: 'created' | 'renewed' | 'acquired'; leader: true }
  | { action: 'follower'; leader: false; holder: string }
  | { action: 'conflict'; leader: false };

/**
 * Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection:
 *
 * - no Lease → create it holding it;
 * - held by us → replace it with a new renewTime;
 * - held by another → follower, until the record has not changed for its leaseDurationSeconds
 *   as measured by *our* clock since we first saw that version (client-go's observedTime:
 *   immune to clock skew between nodes), then take it over (leaseTransitions + 1);
 * - released (empty holder) → take it over at once.
 *
 * Every write names the version it replaces, so of two candidates writing the same
 * version the store accepts one and reports a conflict to the other, who is then not
 * leader this round. The leader steps down as soon as a round fails, and in any case at
 * its local deadline (start of its last successful write + leaseDurationMs), without
 * waiting for a hung call: other candidates cannot take over before that instant.
 * The election only talks to a LeaseStore: HTTP and the client library live in
 * KubernetesLeaseStore.
 */
export class KubernetesLeaseLeader implements Leader {
  private readonly store: LeaseStore;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly leaseDurationSeconds: number;
  private readonly renewIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly clock: () => number;
  private readonly log: Logger;
  private readonly leadership: Leadership;
  private readonly abort = new AbortController();

  /** The Lease as we last wrote it; lets the leader renew without reading first. */
  private ownLease: StoredLease | undefined;
  /** Leadership ends at this instant (clock ms) unless a renewal succeeds before it. */
  private deadline = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Version of the record last read, and when (clock ms) we first saw it. */
  private observedVersion: string | undefined;
  private observedAt = 0;
  /** We wrote ourselves as holder at some point: stop() must check whether to release. */
  private mayHold = false;
  private stopped: Promise<void> | undefined;

  constructor(opts: KubernetesLeaseLeaderOptions) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewIntervalMs = opts.renewIntervalMs ?? 2_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? this.leaseDurationMs;
    validate(opts.identity, this.leaseDurationMs, this.renewIntervalMs, this.requestTimeoutMs);
    this.store = opts.store;
    this.identity = opts.identity;
    this.leaseDurationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    this.clock = opts.clock ?? Date.now;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'leader', lease: this.store.name, identity: this.identity });
    this.leadership = new Leadership(this.log);
  }

  start(): Promise<void> {
    return this.leadership.begin(() => this.round());
  }

  isLeader(): boolean {
    if (this.leadership.current && this.clock() >= this.deadline) {
      this.lose('lease not renewed before its deadline');
    }
    return this.leadership.current;
  }

  onChange(listener: (leader: boolean) => void): void {
    this.leadership.onChange(listener);
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /** One campaign round: read (unless renewing our own record), then create, renew, take over or follow. */
  async runOnce(): Promise<LeaseRound> {
    if (this.leadership.current && this.ownLease !== undefined) {
      return this.write(this.ownLease, 'renewed');
    }
    const lease = await this.store.get(this.signal());
    const now = this.clock();
    if (lease === undefined) return this.create();

    if (lease.version !== this.observedVersion) {
      this.observedVersion = lease.version;
      this.observedAt = now;
    }
    const holder = lease.record.holderIdentity;
    if (holder === this.identity) return this.write(lease, 'renewed');
    const durationMs = (lease.record.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    if (holder !== '' && now < this.observedAt + durationMs) {
      this.mayHold = false;
      this.lose(`lease held by ${holder}`);
      return { action: 'follower', leader: false, holder };
    }
    return this.write(lease, 'acquired');
  }

  /** Runs one round and returns the wait before the next. Never throws. */
  private async round(): Promise<number> {
    const began = performance.now();
    try {
      const result = await this.runOnce();
      this.log.debug({ action: result.action }, 'lease round');
    } catch (err) {
      this.lose('lease round failed');
      if (!this.leadership.stopping) this.log.warn({ err: coerceError(err).message }, 'lease round failed; retrying');
    }
    const interval = this.leadership.current ? this.renewIntervalMs : withJitter(this.renewIntervalMs);
    return Math.max(0, interval - (performance.now() - began));
  }

  private async create(): Promise<LeaseRound> {
    const sentAt = this.clock();
    this.mayHold = true;
    const written = await this.store.create(
      {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        acquireTime: sentAt,
        renewTime: sentAt,
        leaseTransitions: 0,
      },
      this.signal(),
    );
    if (!written.ok) {
      this.lose('another candidate created the lease first');
      return { action: 'conflict', leader: false };
    }
    this.gain(written.lease, sentAt);
    return { action: 'created', leader: true };
  }

  /** Replaces `base` with us as holder; a conflict means someone else wrote since we read it. */
  private async write(base: StoredLease, action: 'renewed' | 'acquired'): Promise<LeaseRound> {
    const sentAt = this.clock();
    const current = base.record;
    const takeover = current.holderIdentity !== this.identity;
    const record: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: takeover || current.acquireTime === undefined ? sentAt : current.acquireTime,
      renewTime: sentAt,
      leaseTransitions: current.leaseTransitions + (takeover ? 1 : 0),
    };
    this.mayHold = true;
    const written = await this.store.replace(base, record, this.signal());
    if (!written.ok) {
      this.lose('lease changed under us (conflict)');
      return { action: 'conflict', leader: false };
    }
    this.gain(written.lease, sentAt);
    return { action, leader: true };
  }

  private gain(lease: StoredLease, sentAt: number): void {
    this.ownLease = lease;
    this.observedVersion = lease.version;
    this.observedAt = sentAt;
    // Others measure expiry from when they saw this write, which is after we sent it.
    this.deadline = sentAt + this.leaseDurationMs;
    this.armDeadline();
    if (!this.leadership.stopping) this.leadership.set(true, 'lease acquired or renewed');
  }

  private lose(reason: string): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.ownLease = undefined;
    this.leadership.set(false, reason);
  }

  /** Fires the step-down at the deadline even if nobody calls isLeader() and the store hangs. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (this.clock() >= this.deadline) this.lose('lease not renewed before its deadline');
      else this.armDeadline();
    }, Math.max(0, this.deadline - this.clock()));
    this.deadlineTimer.unref();
  }

  private async shutdown(): Promise<void> {
    this.abort.abort();
    await this.leadership.halt();
    const release = this.mayHold;
    this.lose('stopping');
    if (release) await this.release();
  }

  /**
   * Hands the lease over at once, as client-go's ReleaseOnCancel does: holder cleared and
   * leaseDurationSeconds 1, so the next candidate's round takes it without waiting for expiry.
   * Reads first so a stale version (an aborted renewal) does not defeat it.
   */
  private async release(): Promise<void> {
    const signal = AbortSignal.timeout(this.requestTimeoutMs);
    try {
      const lease = await this.store.get(signal);
      if (lease?.record.holderIdentity !== this.identity) return;
      const now = this.clock();
      const written = await this.store.replace(
        lease,
        { ...lease.record, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
        signal,
      );
      if (!written.ok) throw new Error('the lease changed while releasing it');
      this.mayHold = false;
      this.log.info('lease released');
    } catch (err) {
      this.log.warn(
        { err: coerceError(err).message },
        'could not release the lease; another replica takes over once it expires',
      );
    }
  }

  /** Aborted on stop() or after requestTimeoutMs, whichever comes first. */
  private signal(): AbortSignal {
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.requestTimeoutMs)]);
  }
}

function validate(identity: string, leaseDurationMs: number, renewIntervalMs: number, requestTimeoutMs: number): void {
  const problems: string[] = [];
  if (!identity) problems.push('identity must not be empty');
  if (!Number.isInteger(leaseDurationMs) || leaseDurationMs < 1000) {
    problems.push(`leaseDurationMs must be a whole number >= 1000 (got ${leaseDurationMs})`);
  }
  if (!Number.isInteger(renewIntervalMs) || renewIntervalMs <= 0) {
    problems.push(`renewIntervalMs must be a whole number > 0 (got ${renewIntervalMs})`);
  } else if (renewIntervalMs >= leaseDurationMs) {
    problems.push(`renewIntervalMs (${renewIntervalMs}) must be less than leaseDurationMs (${leaseDurationMs})`);
  }
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs <= 0) {
    problems.push(`requestTimeoutMs must be a whole number > 0 (got ${requestTimeoutMs})`);
  }
  if (problems.length > 0) throw new RangeError(`KubernetesLeaseLeader: ${problems.join('; ')}`);
}
