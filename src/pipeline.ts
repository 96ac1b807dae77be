import { Channel } from './channel.js';
import type { Config } from './config.js';
import { JobRunner } from './consumers/job-runner.js';
import { TokenBucketLimiter } from './consumers/rate-limiter.js';
import { StateWriter } from './consumers/state-writer.js';
import { ClaimSession } from './db/claim-session.js';
import type { Database } from './db/database.js';
import type { SluiceEvents } from './events.js';
import type { HandlerRegistry } from './handlers/registry.js';
import type { Leader } from './leader/leader.js';
import type { Logger } from './observability/logger.js';
import { DashboardSnapshotPublisher } from './publishers/dashboard-snapshot-publisher.js';
import { DeadJobsPublisher } from './publishers/dead-jobs-publisher.js';
import type { HeartbeatPublisher } from './publishers/heartbeat-publisher.js';
import { HeldJobsPublisher } from './publishers/held-jobs-publisher.js';
import { PendingCancelsPublisher } from './publishers/pending-cancels-publisher.js';
import { Poller } from './publishers/poller.js';
import { ReadyJobsPublisher } from './publishers/ready-jobs-publisher.js';
import { RetentionPublisher } from './publishers/retention-publisher.js';
import { ScheduleSignals } from './publishers/schedule-signals.js';
import { SchedulesPublisher } from './publishers/schedules-publisher.js';
import { SweepSignals } from './publishers/sweep-signals.js';
import { WorkflowPublisher } from './publishers/workflow-publisher.js';
import type { RunnableJob } from './room.js';

/** The leader's dashboard tick: throughput rows are per minute; counts refresh on view. */
const DASHBOARD_TICK_MS = 60_000;

export interface PipelineParts {
  config: Config;
  db: Database;
  registry: HandlerRegistry;
  events: SluiceEvents;
  logger: Logger;
  leader: Leader;
  heartbeat: HeartbeatPublisher;
  /** False while a start could not be recorded (see JobRunnerOptions.canStart). */
  canStart: () => boolean;
}

/** What the daemon starts, stops and asks about; each publisher runs in its own poller. */
export interface Pipeline {
  channel: Channel<RunnableJob>;
  runner: JobRunner;
  writer: StateWriter;
  limiter: TokenBucketLimiter;
  claims: ClaimSession;
  snapshot: DashboardSnapshotPublisher;
  pollers: Record<string, Poller>;
}

/**
 * publishers → bounded channel → rate-limited consumer (DESIGN.md "Architecture"). The
 * publishers meet the consumer only through the channel and `Room` (src/room.ts); the
 * sweeps' hints travel in SweepSignals and ScheduleSignals, filled by the ready-jobs probe.
 */
export function buildPipeline(parts: PipelineParts): Pipeline {
  const { config, db, events, logger, leader, heartbeat } = parts;
  // Sweep hints older than two heartbeats are not trusted: the sweep then looks itself.
  const signals = new SweepSignals(2 * config.heartbeatMs);
  // The probe says when the next schedule tick is due; older than 3 polls: look directly.
  const scheduleSignals = new ScheduleSignals(3 * config.pollMs);
  const channel = new Channel<RunnableJob>(config.prefetch);
  const limiter = new TokenBucketLimiter(config.rate, config.burst);
  const writer = new StateWriter({ db, worker: config.workerId, logger, events, claimHoldMs: config.claimHoldMs });
  const runner = new JobRunner({
    channel,
    db,
    worker: config.workerId,
    concurrency: config.concurrency,
    registry: parts.registry,
    writer,
    limiter,
    logger,
    events,
    canStart: parts.canStart,
  });
  const claims = new ClaimSession(db);
  const snapshot = new DashboardSnapshotPublisher({ db, leader, worker: config.workerId, intervalMs: DASHBOARD_TICK_MS });
  const publishers = {
    heartbeat,
    held: new HeldJobsPublisher({ db, runner, worker: config.workerId, pollMs: config.pollMs }),
    dead: new DeadJobsPublisher({
      db,
      leader,
      worker: config.workerId,
      intervalMs: config.heartbeatMs,
      deadAfterMs: config.deadAfterMs,
      defaultTimeoutMs: config.jobTimeoutMs,
      events,
      signals,
    }),
    cancels: new PendingCancelsPublisher({ db, leader, events, signals, pollMs: config.pollMs }),
    retention: new RetentionPublisher({ db, leader, retentionHours: config.retentionHours, events }),
    schedules: new SchedulesPublisher({ db, events, pollMs: config.pollMs, signals: scheduleSignals }),
    workflows: new WorkflowPublisher({ db, leader, events, pollMs: config.pollMs, signals }),
    // The dashboard's throughput (per minute) and counts, once a minute on the leader;
    // a replica serving a page refreshes the counts when they are older than 5 polls.
    dashboard: snapshot,
    ready: new ReadyJobsPublisher({
      db,
      claims,
      channel,
      worker: config.workerId,
      queues: config.queues,
      pollMs: config.pollMs,
      deadAfterMs: config.deadAfterMs,
      defaultTimeoutMs: config.jobTimeoutMs,
      events,
      room: runner,
      heartbeat,
      leader,
      signals,
      scheduleSignals,
      heldClaims: config.claimHoldMs > 0 ? writer : undefined,
    }),
  };
  const pollers: Record<string, Poller> = {};
  for (const [name, publisher] of Object.entries(publishers)) {
    // Backoff after errors stays under a heartbeat: a replica must beat again soon after
    // the database returns, or the leader takes it for dead.
    pollers[name] = new Poller(publisher, logger, events, { maxBackoffMs: config.heartbeatMs });
  }
  return { channel, runner, writer, limiter, claims, snapshot, pollers };
}
