import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DeferredCounter } from './deferred-counter.js';
import { DeferredHistogram } from './deferred-histogram.js';

/**
 * Every metric sluice exports, declared in one place. Labels are bounded: queue, type,
 * outcome and statement kind, never a job id. The per-job counters and histograms sum in
 * memory until a scrape reads them (DeferredCounter, DeferredHistogram).
 */
export class Metrics {
  readonly registry = new Registry();
  /** Read at scrape time (set by the daemon once the channel exists). */
  channelSize: () => number = () => 0;

  readonly jobsStarted = new DeferredCounter({
    name: 'sluice_jobs_started_total',
    help: 'Job runs started, by queue and type.',
    labelNames: ['queue', 'type'] as const,
    registers: [this.registry],
  });
  readonly jobsFinished = new DeferredCounter({
    name: 'sluice_jobs_finished_total',
    help: 'Job runs ended, by queue, type and outcome (done, retry, failed, cancelled, handed_back, waiting: parked for its children).',
    labelNames: ['queue', 'type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly jobDuration = new DeferredHistogram({
    name: 'sluice_job_duration_seconds',
    help: 'Handler run time, by queue, type and outcome.',
    labelNames: ['queue', 'type', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });
  readonly pickupLatency = new DeferredHistogram({
    name: 'sluice_job_pickup_seconds',
    help: 'From a job becoming due (run_at) to its claim, as seen by the claimer.',
    labelNames: ['queue'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60],
    registers: [this.registry],
  });
  readonly claimBatch = new Histogram({
    name: 'sluice_claim_batch_size',
    help: 'Jobs claimed per claim transaction.',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });
  readonly claimDuration = new Histogram({
    name: 'sluice_claim_duration_seconds',
    help: 'Time of one claim transaction.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly channelDepth: Gauge = new Gauge({
    name: 'sluice_channel_depth',
    help: 'Claimed jobs waiting in this replica for a token and a slot.',
    registers: [this.registry],
    collect: (): void => this.channelDepth.set(this.channelSize()),
  });
  readonly running = new Gauge({
    name: 'sluice_jobs_running',
    help: 'Jobs running in this replica.',
    registers: [this.registry],
  });
  readonly limiterWait = new DeferredHistogram({
    name: 'sluice_limiter_wait_seconds',
    help: 'Time a claimed job waited for a rate token and a concurrency slot.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly dbStatements = new Counter({
    name: 'sluice_db_statements_total',
    help: 'SQL statements sent, by statement name.',
    labelNames: ['statement'] as const,
    registers: [this.registry],
  });
  readonly dbErrors = new Counter({
    name: 'sluice_db_errors_total',
    help: 'SQL statements that failed, by statement name and whether a retry can help.',
    labelNames: ['statement', 'retryable'] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'sluice_leader',
    help: '1 while this replica leads the cluster-wide sweeps.',
    registers: [this.registry],
  });
  readonly sweptJobs = new Counter({
    name: 'sluice_swept_jobs_total',
    help: 'Rows changed by leader sweeps, by sweep (rescued, timed_out, cancelled, pruned).',
    labelNames: ['sweep'] as const,
    registers: [this.registry],
  });
  readonly scheduleTicks = new Counter({
    name: 'sluice_schedule_ticks_total',
    help: 'Schedule ticks, by outcome: made (a job inserted), skipped_overlap, skipped_catch_up, duplicate (the tick already had a job).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly scheduleLateness = new Histogram({
    name: 'sluice_schedule_tick_lateness_seconds',
    help: 'From a tick\'s time to the transaction that made its job.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60, 600, 3600],
    registers: [this.registry],
  });
  readonly scheduleLate = new Counter({
    name: 'sluice_schedule_ticks_late_total',
    help: 'Schedule ticks made more than two poll intervals after their time (downtime, catch-up, an overloaded database).',
    registers: [this.registry],
  });
  readonly scheduleErrors = new Counter({
    name: 'sluice_schedule_errors_total',
    help: 'Schedule rows set aside with last_error (bad cron or time zone, no future tick).',
    registers: [this.registry],
  });
  readonly workflowReleased = new Counter({
    name: 'sluice_workflow_parents_released_total',
    help: 'Waiting parents released to pending, by who: child (the transaction of the last child, or of the park) or leader (the seal or approval came last).',
    labelNames: ['by'] as const,
    registers: [this.registry],
  });
  readonly workflowFailedFast = new Counter({
    name: 'sluice_workflow_parents_failed_fast_total',
    help: 'Waiting parents failed at once because a child failed or was cancelled (on_child_failure = fail).',
    registers: [this.registry],
  });
  readonly workflowWaitingEnded = new Counter({
    name: 'sluice_workflow_waiting_ended_total',
    help: 'Waiting jobs ended by the leader, by reason: cancelled (cancel requested) or deadline (wait_deadline passed).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly workflowCascaded = new Counter({
    name: 'sluice_workflow_cascaded_jobs_total',
    help: 'Rows changed by cascades, by kind: cancel (cancel requests pushed to children), pause (paused pushed to children), cancelled_pending (pending children cancelled).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly workflowReconciled = new Counter({
    name: 'sluice_workflow_reconciler_fixes_total',
    help: 'Waiting parents whose counters the reconciler found off and rewrote from their children.',
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'sluice_ready',
    help: '1 while the database answers and migrations are done.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
