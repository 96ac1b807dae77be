import { hostname } from 'node:os';
import type { Config } from './config.js';
import { DashboardServer } from './dashboard/dashboard-server.js';
import { Database } from './db/database.js';
import { leasesResolveOf } from './db/queries/job-leases.js';
import { jobsRescueOf } from './db/queries/jobs-rescue.js';
import { workersDelete } from './db/queries/workers.js';
import { coerceError } from './errors.js';
import { SluiceEvents } from './events.js';
import { createHttpHandler } from './handlers/http.js';
import { HandlerRegistry } from './handlers/registry.js';
import { sleepHandler } from './handlers/sleep.js';
import { createLeader, inKubernetesCluster } from './leader/create-leader.js';
import type { Leader } from './leader/leader.js';
import { createLogger, type Logger } from './observability/logger.js';
import { HttpServer } from './observability/http-server.js';
import { MetricLabels } from './observability/metric-labels.js';
import { Metrics } from './observability/metrics.js';
import { subscribeLogs, subscribeMetrics } from './observability/subscribers.js';
import { HeartbeatPublisher } from './publishers/heartbeat-publisher.js';
import type { Poller } from './publishers/poller.js';
import { buildPipeline, type Pipeline } from './pipeline.js';
import { retryStartUpStep, untilDatabase, type StartUpOptions } from './start-up.js';
import { VERSION } from './version.js';

/**
 * A state writer failing this long while the database answers other statements is stuck
 * (not waiting out an outage): /healthz turns 503 so Kubernetes restarts the pod.
 */
export const WRITER_STUCK_MS = 60_000;

/** How long the claim loop runs alone after start-up before the other loops start. */
const FIRST_CLAIM_ALONE_MS = 50;

/** How long a stop keeps retrying hand-backs and outcome writes through a database blip. */
const HAND_BACK_MS = 10_000;

export interface DaemonOptions {
  logger?: Logger;
  /** Leader override (tests). */
  leader?: Leader;
  /** How long the state writer may fail while the database answers before /healthz fails (tests). */
  writerStuckMs?: number;
  /** Serve the dashboard even with SLUICE_DASHBOARD_PORT=0, on a free port (tests). */
  dashboardOnAnyPort?: boolean;
}

/**
 * Wiring only: database → migrations → handlers → leader → consumer → publishers on
 * start; the reverse on stop. start() and stop() are safe to call twice.
 */
export class Daemon {
  readonly events = new SluiceEvents();
  readonly metrics = new Metrics();
  readonly logger: Logger;
  readonly db: Database;
  readonly registry: HandlerRegistry;
  private readonly http: HttpServer;
  private leader: Leader | undefined;
  private pipeline: Pipeline | undefined;
  private readonly pollers: Record<string, Poller> = {};
  private readonly timers: NodeJS.Timeout[] = [];
  private dbHealthy = false;
  private migrated = false;
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** Aborted when a stop begins: start-up's retries give up instead of waiting on. */
  private readonly halt = new AbortController();
  /**
   * False when a stop could not hand every claimed job back or write every outcome: the
   * worker row stays, so the leader's sweep returns the jobs, and the process exits non-zero.
   */
  cleanStop = true;
  httpPort: number | undefined;
  /** The dashboard's port once listening (undefined: off). */
  dashboardPort: number | undefined;
  private dashboard: DashboardServer | undefined;

  constructor(
    readonly config: Config,
    private readonly options: DaemonOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.logLevel, { worker: config.workerId });
    subscribeLogs(this.events, this.logger);
    subscribeMetrics(this.events, this.metrics, new MetricLabels((type) => this.registry.get(type) !== undefined));
    this.db = new Database({
      url: config.databaseUrl,
      // Claims, batched writes, sweeps and the held-jobs check each need at most one.
      connectionLimit: 8,
      onStatement: (statement, ok, retryable) => {
        this.metrics.dbStatements.inc({ statement });
        if (!ok) this.metrics.dbErrors.inc({ statement, retryable: String(retryable) });
      },
      onHealth: (healthy) => {
        this.dbHealthy = healthy;
        this.metrics.ready.set(this.isReady() ? 1 : 0);
        this.events.emit('db:health', { healthy });
        // Back: every loop and the writer try now, not at the end of their backoff. The
        // leader waits one dead-after span after an outage before declaring anyone dead;
        // heartbeats and the outcomes kept through the outage must land well within it.
        if (healthy) {
          for (const poller of Object.values(this.pollers)) poller.poke();
          this.pipeline?.writer.retryNow();
        }
      },
    });
    this.registry = new HandlerRegistry({ sleep: sleepHandler, http: createHttpHandler({ allow: config.httpAllow }) });
    this.http = new HttpServer(config.httpPort, { live: () => this.isLive(), ready: () => this.isReady() }, this.metrics);
  }

  /** Liveness: false only when the state writer is stuck although the database answers. */
  isLive(): boolean {
    return !(this.dbHealthy && (this.pipeline?.writer.stuckForMs() ?? 0) > (this.options.writerStuckMs ?? WRITER_STUCK_MS));
  }

  /**
   * A handler threw where nothing could catch it. Its job ends as a failed attempt; the
   * other jobs are handed back (not counted) by a stop without grace; then the process
   * exits non-zero and Kubernetes restarts it. Returns when the stop is done.
   */
  async crash(err: Error, jobId: number | undefined): Promise<void> {
    this.logger.fatal({ err: err.message, stack: err.stack, job_id: jobId }, 'uncaught exception; handing other jobs back and exiting');
    if (jobId !== undefined) this.pipeline?.runner.crashed(jobId, err);
    this.cleanStop = false;
    this.halt.abort();
    this.stopping ??= this.doStop(0);
    await this.stopping;
  }

  isReady(): boolean {
    return this.dbHealthy && this.migrated && this.pipeline !== undefined && this.stopping === undefined;
  }

  start(): Promise<void> {
    this.started ??= this.doStart();
    return this.started;
  }

  stop(): Promise<void> {
    this.halt.abort();
    this.stopping ??= this.doStop(this.config.shutdownGraceMs);
    return this.stopping;
  }

  private async doStart(): Promise<void> {
    const { config, logger } = this;
    // Handler modules first: a broken module is a configuration error, refused at once.
    for (const mod of config.handlerModules) {
      const types = await this.registry.load(mod);
      logger.info({ module: mod, types }, 'handlers loaded');
    }
    this.httpPort = await this.http.start();
    if (config.dashboardPort > 0 || this.options.dashboardOnAnyPort) {
      this.dashboard = new DashboardServer({
        databaseUrl: config.databaseUrl,
        port: config.dashboardPort,
        host: config.dashboardHost,
        actions: config.dashboardActions,
        logger,
        metrics: this.metrics,
        // While someone looks, counts and throughput are at most 5 polls old (the leader's own tick is a minute).
        refreshCounts: () => this.pipeline?.snapshot.refresh() ?? Promise.resolve(),
        countsFreshMs: Math.min(5000, Math.max(250, 5 * config.pollMs)),
      });
      this.dashboardPort = await this.dashboard.start();
      logger.info({ url: `http://${config.dashboardHost}:${this.dashboardPort}/`, actions: config.dashboardActions }, 'dashboard listening');
    }
    logger.info({ port: this.httpPort, queues: config.queues.length ? config.queues : ['*'], version: VERSION }, 'sluice starting');

    const startUp = { signal: this.halt.signal, logger };
    const migrated = await untilDatabase(this.db, { ...startUp, migrate: config.migrate, onFailure: () => (this.dbHealthy = false) });
    if (!migrated || this.stopping) return;
    this.migrated = true;
    this.dbHealthy = true;

    const identity = {
      id: config.workerId,
      host: hostname(),
      pid: process.pid,
      version: VERSION,
      queues: config.queues.length ? config.queues.join(',') : '*',
    };
    const heartbeat = new HeartbeatPublisher({
      db: this.db,
      identity,
      intervalMs: config.heartbeatMs,
      deadAfterMs: config.deadAfterMs,
      logger,
      onStale: () => this.pipeline?.runner.abandonAll(),
    });
    // Recovery, registration and the leader election touch different rows and connections:
    // side by side, the first claim comes a few round trips sooner. Both settle before
    // start-up goes on or fails, so that stop() finds the leader it must stop.
    const [registered, elected] = await Promise.allSettled([this.recoverAndRegister(heartbeat, startUp), this.startLeader()]);
    if (registered.status === 'rejected') throw registered.reason;
    if (elected.status === 'rejected') throw elected.reason;
    const leader = elected.value;

    const pipeline = buildPipeline({
      config,
      db: this.db,
      registry: this.registry,
      events: this.events,
      logger,
      leader,
      heartbeat,
      canStart: () => this.dbHealthy && this.pipeline?.writer.stuckForMs() === 0,
    });
    this.pipeline = pipeline;
    this.metrics.channelSize = () => pipeline.channel.size;
    pipeline.runner.start();
    Object.assign(this.pollers, pipeline.pollers);
    // The claim loop first, the others a moment later: the first claim after start-up has
    // the database to itself (every loop's first look opens a connection and sends a query).
    pipeline.pollers.ready?.start();
    const startRest = setTimeout(() => {
      if (!this.stopping) for (const [name, poller] of Object.entries(pipeline.pollers)) if (name !== 'ready') poller.start();
    }, FIRST_CLAIM_ALONE_MS);
    this.timers.push(startRest);
    this.metrics.ready.set(this.isReady() ? 1 : 0);
    logger.info({ concurrency: config.concurrency, rate: config.rate, prefetch: config.prefetch }, 'sluice ready');
  }

  /** What this worker id held in a previous life goes back; then the replica registers. */
  private async recoverAndRegister(heartbeat: HeartbeatPublisher, startUp: StartUpOptions): Promise<void> {
    const { config, logger } = this;
    // A restarted container keeps its pod name: whatever its previous life held is orphaned.
    // Rows of a claim it held open when it died read pending: they go back as reclaimed.
    const leased = await retryStartUpStep('recover-leases', () => leasesResolveOf(this.db, [config.workerId]), startUp);
    if (leased > 0) logger.warn({ reclaimed: leased }, 'jobs of a claim this worker id held open in a previous life are reclaimed');
    const orphans = await retryStartUpStep('recover-orphans', () => jobsRescueOf(this.db, [config.workerId], 'worker restarted while running it'), startUp);
    if (orphans.rescued + orphans.requeued > 0) logger.warn({ ...orphans }, 'recovered jobs of this worker id from a previous life');
    const staleCheck = setInterval(() => heartbeat.checkStale(), Math.max(10, Math.floor(config.heartbeatMs / 4)));
    staleCheck.unref();
    this.timers.push(staleCheck);
    await retryStartUpStep('register', () => heartbeat.register(), startUp);
  }

  private async startLeader(): Promise<Leader> {
    const { config, logger } = this;
    // Lease: renewed every heartbeat, valid for half the dead-after span.
    // MySQL lock: followers try every half dead-after span (a dead leader's lock is free the
    // moment its session ends); the leader re-checks rarely (a lost session is reported at
    // once anyway, and two leaders for a while only repeat fenced, idempotent sweeps).
    // Idle, leadership costs next to no statement.
    const timings = inKubernetesCluster()
      ? { renewIntervalMs: config.heartbeatMs, leaseDurationMs: Math.max(1000, 3 * config.heartbeatMs, Math.floor(config.deadAfterMs / 2)) }
      : { renewIntervalMs: Math.floor(config.deadAfterMs / 2), leaderCheckIntervalMs: 10 * config.deadAfterMs };
    this.leader = this.options.leader ?? (await createLeader({ identity: config.workerId, mysql: this.db.options, namespace: config.namespace, logger, ...timings }));
    const leader = this.leader;
    leader.onChange((leading) => this.events.emit('leader:changed', { leader: leading }));
    await leader.start();
    return leader;
  }

  private async doStop(graceMs: number): Promise<void> {
    const { config, logger } = this;
    logger.info({ grace_ms: graceMs }, 'sluice stopping');
    // Within the pod's termination grace: the grace itself, then HAND_BACK_MS for the writes.
    const deadline = Date.now() + graceMs + HAND_BACK_MS;
    await this.started?.catch(() => undefined);
    // 1. No new claims. 2. Queued work back at once; running work gets the grace period.
    await this.pollers.ready?.stop();
    await this.pipeline?.claims.end();
    const handedBack = (await this.pipeline?.runner.stop(graceMs, HAND_BACK_MS)) ?? true;
    // 3. Every outcome written (bounded: the database may be gone).
    const written = (await this.pipeline?.writer.drain(deadline)) ?? true;
    this.pipeline?.writer.close();
    await this.pipeline?.limiter.stop();
    for (const name of ['dashboard', 'schedules', 'workflows', 'held', 'dead', 'cancels', 'retention', 'heartbeat']) await this.pollers[name]?.stop();
    for (const t of this.timers) clearInterval(t);
    await this.leader?.stop().catch(() => undefined);
    if (this.pipeline) {
      if (handedBack && written) {
        await workersDelete(this.db, config.workerId).catch((err: unknown) => {
          logger.warn({ err: coerceError(err).message }, 'could not remove the worker row; the leader will');
        });
      } else {
        // The row stays: once its heartbeat is older than dead-after, the leader returns
        // whatever is still held under this id (or this pod does, when it restarts).
        this.cleanStop = false;
        logger.error({ handed_back: handedBack, outcomes_written: written }, 'could not hand every job back; leaving the worker row for the leader to recover');
      }
    }
    await this.dashboard?.stop();
    await this.http.stop();
    await this.db.end();
    logger.info('sluice stopped');
  }
}
