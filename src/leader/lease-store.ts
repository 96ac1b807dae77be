/**
 * Where the Kubernetes leader's Lease record lives: the API server in a cluster
 * (KubernetesLeaseStore), memory in the election's unit tests. The election
 * (KubernetesLeaseLeader) only reads, creates and replaces one record through this
 * interface, so it never sees HTTP, and the client library is loaded only when a Lease
 * is really used.
 */

/** The fields of a coordination.k8s.io/v1 LeaseSpec the election reads and writes. */
export interface LeaseRecord {
  /** Who holds the lease; '' when nobody does (released). */
  holderIdentity: string;
  /** How long the holder's lease lasts without renewal; undefined when the record omits it. */
  leaseDurationSeconds: number | undefined;
  /** When the current holder took it, ms since the epoch. */
  acquireTime: number | undefined;
  /** When the holder last renewed it, ms since the epoch. */
  renewTime: number | undefined;
  /** How many times the lease changed hands. */
  leaseTransitions: number;
}

/** A record as the store holds it, with the version a replace of it must name. */
export interface StoredLease {
  readonly record: LeaseRecord;
  /**
   * Changes with every write (the API server's metadata.resourceVersion). The election
   * measures expiry from when it first saw a version, by its own clock.
   */
  readonly version: string;
}

/**
 * What a write did. `conflict`: somebody else wrote first (create: the record exists;
 * replace: it changed since `current` was read), so this candidate is not leader.
 */
export type LeaseWrite = { ok: true; lease: StoredLease } | { ok: false; conflict: true };

/**
 * One Lease record. Every call takes a signal that aborts it (stop, request timeout).
 * Anything but "not found" and a conflict is thrown, with a short message free of
 * secrets (it is logged).
 */
export interface LeaseStore {
  /** `namespace/name`, for logs. */
  readonly name: string;
  /** The record, or undefined when there is none. */
  get(signal: AbortSignal): Promise<StoredLease | undefined>;
  /** Creates the record; a conflict when it already exists. */
  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseWrite>;
  /**
   * Replaces `current` (as last read or written) with `record`; a conflict when the
   * stored version is no longer `current.version`. Fields of the stored object the
   * election does not model are kept.
   */
  replace(current: StoredLease, record: LeaseRecord, signal: AbortSignal): Promise<LeaseWrite>;
}
