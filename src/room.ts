import type { Channel } from './channel.js';
import type { ClaimedJob } from './db/queries/jobs-claim.js';
import type { HeldJobChange } from './db/queries/jobs-control.js';
import type { RunRef } from './db/queries/jobs-run.js';
import type { OpenClaim } from './db/claim-session.js';
import { INLINE_PAYLOAD_BYTES, QUEUED_PAYLOAD_BYTES } from './limits.js';

/** A claimed job as it crosses the channel: with the timeout that applies to it (job, else queue, else default). */
export interface RunnableJob extends ClaimedJob {
  effectiveTimeoutMs: number;
  /** performance.now() when the claim that took it began. */
  claimedAt: number;
}

/**
 * The consumer's side of the boundary, as the publisher that feeds it sees it: how much
 * room there is, and a signal when room was freed. (Solid Queue's worker claims
 * `pool.idle_threads` and the pool wakes it through `on_idle`; River's producer fetches
 * `maxJobsToFetch`.) The job runner implements it; the ready-jobs publisher uses it.
 */
export interface Room {
  /** Registers a claimed job before it is sent; false: this consumer already holds that run (drop it). */
  admit(job: RunnableJob): boolean;
  /** Claimed jobs not started yet, wherever they wait (the channel, or stages behind it). */
  readonly queuedCount: number;
  /** Payload bytes those jobs carry. */
  readonly queuedPayloadBytes: number;
  /** `listener` runs after each round of starts: claimed jobs left the queue. */
  onRoomFreed(listener: () => void): void;
  /**
   * Whether `n` more claimed jobs would, by how runs went lately, all have ended within
   * `withinMs`: then their claim may stay open until they end (see HeldClaims).
   */
  endsWithin?(n: number, withinMs: number): boolean;
}

/**
 * What the held-jobs check sees of the consumer: the runs this replica holds, and a way to
 * pass on what the database says changed for them (a cancel requested, a row taken away).
 * The job runner implements it; the held-jobs publisher uses it.
 */
export interface HeldRunsView {
  /** Runs queued or running here, each as (id, attempts). */
  heldRuns(): RunRef[];
  /** Resolves once cancels of runs not started yet are recorded. */
  applyChanges(changes: readonly HeldJobChange[]): Promise<void>;
}

/**
 * How many jobs a claim may take now: the channel's free places, less the claimed jobs
 * still waiting behind it, and no more than the payload budget can hold if each carried
 * the largest inline payload (memory stays bounded whatever the rows hold).
 */
export function freeRoom(channel: Channel<RunnableJob>, room: Room): number {
  const byBytes = Math.floor((QUEUED_PAYLOAD_BYTES - room.queuedPayloadBytes) / INLINE_PAYLOAD_BYTES);
  return Math.max(0, Math.min(channel.room(), channel.capacity - room.queuedCount, byBytes));
}

/** The room of an empty consumer. */
export function fullRoom(channel: Channel<RunnableJob>): number {
  return Math.min(channel.capacity, Math.floor(QUEUED_PAYLOAD_BYTES / INLINE_PAYLOAD_BYTES));
}

/**
 * The consumer's side of a claim held open: the publisher hands over the claim's
 * transaction (its rows locked, not written; a lease row names them), and the consumer
 * writes its jobs' starts and outcomes there, each row once, and commits. The state
 * writer implements it.
 */
export interface HeldClaims {
  /** Longest a claim stays open. */
  readonly holdMs: number;
  /** Fewer claims are held than the most allowed (each holds a connection). */
  canHoldMore(): boolean;
  /** A lease write failed: it may have landed all the same, left behind. */
  leaseLeftBehind(): void;
  open(claim: { claim: OpenClaim; ids: readonly number[]; batch: number; claimedAt: number }): void;
}
