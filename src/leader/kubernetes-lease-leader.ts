import {
  ApiException,
  CoordinationV1Api,
  V1MicroTime,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type ObservableMiddleware,
  type V1Lease,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { coerceError } from '../errors.js';
import type { Leader } from './leader.js';
import { Leadership, silentLogger, withJitter } from './leadership.js';

export interface KubernetesLeaseLeaderOptions {
  /** API server and credentials; in a pod, `KubeConfig.loadFromCluster()`. */
  kubeConfig: KubeConfig;
  /** Namespace of the Lease: the pod's own, where RBAC grants get/create/update on leases. */
  namespace: string;
  /** Name of the Lease object. Default `sluice-leader`. */
  leaseName?: string;
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
   * One API call is aborted after this many ms. Default leaseDurationMs: an answer later
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
 * - no Lease (404) → create it holding it;
 * - held by us → replace it with a new renewTime;
 * - held by another → follower, until the record has not changed for its leaseDurationSeconds
 *   as measured by *our* clock since we first saw that version (client-go's observedTime:
 *   immune to clock skew between nodes), then take it over (leaseTransitions + 1);
 * - released (empty holder) → take it over at once.
 *
 * Every write carries metadata.resourceVersion, so of two candidates writing the same
 * version the API server accepts one and answers 409 Conflict to the other, who is then
 * not leader this round. The leader steps down as soon as a round fails, and in any case
 * at its local deadline (start of its last successful write + leaseDurationMs), without
 * waiting for a hung API call: other candidates cannot take over before that instant.
 */
export class KubernetesLeaseLeader implements Leader {
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  private readonly leaseName: string;
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
  private ownLease: V1Lease | undefined;
  /** Leadership ends at this instant (clock ms) unless a renewal succeeds before it. */
  private deadline = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** resourceVersion of the record last read, and when (clock ms) we first saw it. */
  private observedVersion: string | undefined;
  private observedAt = 0;
  /** We wrote ourselves as holder at some point: stop() must check whether to release. */
  private mayHold = false;
  private stopped: Promise<void> | undefined;

  constructor(opts: KubernetesLeaseLeaderOptions) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewIntervalMs = opts.renewIntervalMs ?? 2_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? this.leaseDurationMs;
    validate(opts, this.leaseDurationMs, this.renewIntervalMs, this.requestTimeoutMs);
    this.api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    this.namespace = opts.namespace;
    this.leaseName = opts.leaseName ?? 'sluice-leader';
    this.identity = opts.identity;
    this.leaseDurationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    this.clock = opts.clock ?? Date.now;
    this.log = (opts.logger ?? silentLogger()).child({
      component: 'leader',
      lease: `${this.namespace}/${this.leaseName}`,
      identity: this.identity,
    });
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
    const lease = await this.read(this.signal());
    const now = this.clock();
    if (lease === undefined) return this.create();

    const version = lease.metadata?.resourceVersion ?? JSON.stringify(lease.spec ?? {});
    if (version !== this.observedVersion) {
      this.observedVersion = version;
      this.observedAt = now;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder === this.identity) return this.write(lease, 'renewed');
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
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
      if (!this.leadership.stopping) this.log.warn({ err: describe(err) }, 'lease round failed; retrying');
    }
    const interval = this.leadership.current ? this.renewIntervalMs : withJitter(this.renewIntervalMs);
    return Math.max(0, interval - (performance.now() - began));
  }

  private async create(): Promise<LeaseRound> {
    const sentAt = this.clock();
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.leaseName, namespace: this.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        acquireTime: new V1MicroTime(sentAt),
        renewTime: new V1MicroTime(sentAt),
        leaseTransitions: 0,
      },
    };
    this.mayHold = true;
    try {
      const created = await this.api.createNamespacedLease({ namespace: this.namespace, body }, this.callOptions());
      this.gain(created, sentAt);
      return { action: 'created', leader: true };
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      this.lose('another candidate created the lease first');
      return { action: 'conflict', leader: false };
    }
  }

  /** Replaces `base` with us as holder; a 409 means someone else wrote since we read it. */
  private async write(base: V1Lease, action: 'renewed' | 'acquired'): Promise<LeaseRound> {
    const sentAt = this.clock();
    const spec = base.spec ?? {};
    const takeover = spec.holderIdentity !== this.identity;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: writableMetadata(base.metadata),
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds,
        acquireTime: takeover || spec.acquireTime === undefined ? new V1MicroTime(sentAt) : spec.acquireTime,
        renewTime: new V1MicroTime(sentAt),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
      },
    };
    this.mayHold = true;
    try {
      const written = await this.api.replaceNamespacedLease(
        { name: this.leaseName, namespace: this.namespace, body },
        this.callOptions(),
      );
      this.gain(written, sentAt);
      return { action, leader: true };
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      this.lose('lease changed under us (409 Conflict)');
      return { action: 'conflict', leader: false };
    }
  }

  private async read(signal: AbortSignal): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease(
        { name: this.leaseName, namespace: this.namespace },
        callOptions(signal),
      );
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private gain(lease: V1Lease, sentAt: number): void {
    this.ownLease = lease;
    this.observedVersion = lease.metadata?.resourceVersion;
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

  /** Fires the step-down at the deadline even if nobody calls isLeader() and the API hangs. */
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
   * Reads first so a stale resourceVersion (an aborted renewal) does not defeat it.
   */
  private async release(): Promise<void> {
    const signal = AbortSignal.timeout(this.requestTimeoutMs);
    try {
      const lease = await this.read(signal);
      if (lease?.spec?.holderIdentity !== this.identity) return;
      const now = new V1MicroTime(this.clock());
      await this.api.replaceNamespacedLease(
        {
          name: this.leaseName,
          namespace: this.namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: writableMetadata(lease.metadata),
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
          },
        },
        callOptions(signal),
      );
      this.mayHold = false;
      this.log.info('lease released');
    } catch (err) {
      this.log.warn({ err: describe(err) }, 'could not release the lease; another replica takes over once it expires');
    }
  }

  /** Aborted on stop() or after requestTimeoutMs, whichever comes first. */
  private signal(): AbortSignal {
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.requestTimeoutMs)]);
  }

  private callOptions(): ConfigurationOptions {
    return callOptions(this.signal());
  }
}

/** Per-call options that attach an AbortSignal to the request (node-fetch honours it). */
function callOptions(signal: AbortSignal): ConfigurationOptions {
  const withSignal: ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [withSignal], middlewareMergeStrategy: 'append' };
}

/** The metadata to send back on replace: managedFields left out so the server keeps its own. */
function writableMetadata(meta: V1ObjectMeta | undefined): V1ObjectMeta {
  const writable: V1ObjectMeta = { ...meta };
  delete writable.managedFields;
  return writable;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** A short, secret-free description: ApiException's message carries whole bodies and headers. */
function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    const message =
      typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
        ? (body as { message: string }).message
        : typeof body === 'string'
          ? body.slice(0, 200)
          : '';
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  return coerceError(err).message;
}

function validate(
  opts: KubernetesLeaseLeaderOptions,
  leaseDurationMs: number,
  renewIntervalMs: number,
  requestTimeoutMs: number,
): void {
  const problems: string[] = [];
  if (!opts.identity) problems.push('identity must not be empty');
  if (!opts.namespace) problems.push('namespace must not be empty');
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
