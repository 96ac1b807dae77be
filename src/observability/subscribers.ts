import type { RunOutcome, SluiceEvents } from '../events.js';
import type { Logger } from './logger.js';
import type { MetricLabels } from './metric-labels.js';
import type { Metrics } from './metrics.js';

/** Logs: one line per job transition at debug, one per error at warn/error, with stable fields. */
export function subscribeLogs(events: SluiceEvents, logger: Logger): void {
  events.on('jobs:claimed', ({ queue, jobs, durationMs }) =>
    logger.debug({ queue, claimed: jobs.length, duration_ms: round(durationMs) }, 'claimed'),
  );
  // Per-job lines build their fields only when their level is on: most runs log nothing.
  events.on('job:started', ({ job, attempt }) => {
    if (logger.isLevelEnabled('debug')) logger.debug({ job_id: job.id, queue: job.queue, type: job.type, attempt }, 'running');
  });
  events.on('job:finished', ({ job, attempt, outcome, durationMs, error }) => {
    const level = outcome === 'failed' || outcome === 'timed_out' ? 'warn' : outcome === 'retry' ? 'info' : 'debug';
    if (!logger.isLevelEnabled(level)) return;
    const fields = { job_id: job.id, queue: job.queue, type: job.type, attempt, outcome, duration_ms: round(durationMs), error };
    logger[level](fields, level === 'info' ? 'job attempt failed; will retry' : `job ${outcome}`);
  });
  events.on('job:cancelled-before-start', ({ job }) =>
    logger.debug({ job_id: job.id, queue: job.queue, type: job.type }, 'cancelled before start'),
  );
  events.on('job:refused', ({ job, error }) =>
    logger.warn({ job_id: job.id, queue: job.queue, type: job.type, error }, 'job failed before it started'),
  );
  events.on('jobs:handed-back', ({ count, reason }) => logger.info({ jobs: count, reason }, 'handed queued jobs back'));
  events.on('sweep:done', ({ sweep, count }) => logger.info({ sweep, jobs: count }, 'sweep changed jobs'));
  // leader:changed is logged by the leader itself, once, with the reason (src/leader/leadership.ts).
  // The first answer at start-up is not a recovery: "again" only after an outage.
  let wasDown = false;
  events.on('db:health', ({ healthy }) => {
    if (healthy) logger.info(wasDown ? 'database answers again' : 'database connected');
    else logger.error('database unreachable; retrying with backoff');
    wasDown ||= !healthy;
  });
  events.on('schedule:ticked', ({ scheduleId, name, ticks, lateMs, skipped, next }) => {
    ticks.forEach((tick, i) =>
      logger.debug({ schedule_id: scheduleId, schedule: name, scheduled_for: tick, late_ms: lateMs[i], next_run_at: next }, 'schedule tick made'),
    );
    if (skipped.overlap + skipped.catchUp + skipped.duplicate > 0) {
      logger.debug({ schedule_id: scheduleId, schedule: name, skipped, next_run_at: next }, 'schedule ticks skipped');
    }
  });
  events.on('schedule:invalid', ({ scheduleId, name, error }) =>
    logger.warn({ schedule_id: scheduleId, schedule: name, error }, 'schedule set aside until edited'),
  );
  events.on('workflow:released', ({ count, by }) => logger.debug({ parents: count, by }, 'waiting parents released'));
  events.on('workflow:failed-fast', ({ parentId, childId }) =>
    logger.info({ job_id: parentId, child_id: childId }, 'parent failed fast: a child failed or was cancelled'),
  );
  events.on('workflow:waiting-ended', ({ reason, count }) => logger.info({ reason, jobs: count }, 'waiting jobs ended'));
  events.on('workflow:cascaded', ({ kind, count }) => logger.debug({ kind, jobs: count }, 'cascade pushed to children'));
  events.on('workflow:reconciled', ({ parentId, before, after }) =>
    logger.warn({ job_id: parentId, before, after }, 'reconciler rewrote a waiting parent\'s counters from its children'),
  );
}

/** Metrics from the same events. */
export function subscribeMetrics(events: SluiceEvents, metrics: Metrics, labels: MetricLabels): void {
  const series = new JobSeries();
  const noLabels = {};
  events.on('jobs:claimed', ({ queue, jobs, durationMs }) => {
    metrics.claimBatch.observe(jobs.length);
    metrics.claimDuration.observe(durationMs / 1000);
    const l = series.ofQueue(labels.queue(queue));
    for (const j of jobs) metrics.pickupLatency.add(l, Math.max(0, j.waitedMs) / 1000);
  });
  events.on('job:started', ({ job, limiterWaitMs }) => {
    metrics.jobsStarted.add(series.of(labels.queue(job.queue), labels.type(job.type)).labels);
    metrics.limiterWait.add(noLabels, limiterWaitMs / 1000);
    metrics.running.inc();
  });
  events.on('job:finished', ({ job, outcome, durationMs }) => {
    const l = series.of(labels.queue(job.queue), labels.type(job.type)).outcome(outcome);
    metrics.running.dec();
    metrics.jobsFinished.add(l);
    metrics.jobDuration.add(l, durationMs / 1000);
  });
  events.on('job:cancelled-before-start', ({ job }) =>
    metrics.jobsFinished.add(series.of(labels.queue(job.queue), labels.type(job.type)).outcome('cancelled')),
  );
  events.on('job:refused', ({ job }) => metrics.jobsFinished.add(series.of(labels.queue(job.queue), labels.type(job.type)).outcome('failed')));
  events.on('sweep:done', ({ sweep, count }) => metrics.sweptJobs.inc({ sweep }, count));
  events.on('leader:changed', ({ leader }) => metrics.leader.set(leader ? 1 : 0));
  events.on('schedule:ticked', ({ lateMs, lateAfterMs, made, skipped }) => {
    if (made > 0) metrics.scheduleTicks.inc({ outcome: 'made' }, made);
    if (skipped.overlap > 0) metrics.scheduleTicks.inc({ outcome: 'skipped_overlap' }, skipped.overlap);
    if (skipped.catchUp > 0) metrics.scheduleTicks.inc({ outcome: 'skipped_catch_up' }, skipped.catchUp);
    if (skipped.duplicate > 0) metrics.scheduleTicks.inc({ outcome: 'duplicate' }, skipped.duplicate);
    for (const ms of lateMs) {
      metrics.scheduleLateness.observe(Math.max(0, ms) / 1000);
      if (ms > lateAfterMs) metrics.scheduleLate.inc();
    }
  });
  events.on('schedule:invalid', () => metrics.scheduleErrors.inc());
  events.on('workflow:released', ({ count, by }) => metrics.workflowReleased.inc({ by }, count));
  events.on('workflow:failed-fast', () => metrics.workflowFailedFast.inc());
  events.on('workflow:waiting-ended', ({ reason, count }) => metrics.workflowWaitingEnded.inc({ reason }, count));
  events.on('workflow:cascaded', ({ kind, count }) => metrics.workflowCascaded.inc({ kind }, count));
  events.on('workflow:reconciled', () => metrics.workflowReconciled.inc());
}

/**
 * The label objects of each queue, (queue, type) series and its outcomes, made once: a
 * job's metrics build none, and DeferredCounter and DeferredHistogram key their sums by
 * them. Bounded, since queue and type are already the bounded label values (MetricLabels).
 */
class JobSeries {
  private readonly byQueue = new Map<string, Map<string, Series>>();
  private readonly queues = new Map<string, { queue: string }>();

  /** The labels of a per-queue series (pickup latency). */
  ofQueue(queue: string): { queue: string } {
    let l = this.queues.get(queue);
    if (!l) this.queues.set(queue, (l = { queue }));
    return l;
  }

  of(queue: string, type: string): Series {
    let byType = this.byQueue.get(queue);
    if (!byType) this.byQueue.set(queue, (byType = new Map<string, Series>()));
    let s = byType.get(type);
    if (!s) byType.set(type, (s = new Series(queue, type)));
    return s;
  }
}

class Series {
  readonly labels: { queue: string; type: string };
  private readonly outcomes = new Map<RunOutcome, { queue: string; type: string; outcome: RunOutcome }>();

  constructor(queue: string, type: string) {
    this.labels = { queue, type };
  }

  outcome(outcome: RunOutcome): { queue: string; type: string; outcome: RunOutcome } {
    let l = this.outcomes.get(outcome);
    if (!l) this.outcomes.set(outcome, (l = { ...this.labels, outcome }));
    return l;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
