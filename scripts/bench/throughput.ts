/**
 * The default set's scenarios of plain jobs: throughput (1 and 3 replicas, and over a big
 * finished table), idle cost, steady load, sparse arrivals (latency) and the rate limit.
 */
import { availableParallelism } from 'node:os';
import { BIG_ROWS, CONCURRENCY, DB, IDLE_S, JOB_MS, LOAD_RATE, LOAD_S, N, POLL_MS, RATE_N, TRICKLE_S } from './config.js';
import { hostTicks, serverCounters, statements } from './counters.js';
import { insertNoops, pickupPercentiles, q, resetDatabase } from './db.js';
import { round, until, type Result } from './harness.js';
import { startReplicas, stopReplicas } from './replicas.js';

export async function throughput(scenario: string, replicas: number, beforeStart?: () => Promise<void>): Promise<Result> {
  await resetDatabase();
  const extra = { SLUICE_CONCURRENCY: CONCURRENCY, SLUICE_RATE: '1000000', SLUICE_POLL_MS: POLL_MS };
  // Migrations first (a replica applies them), then the optional big table, then the run.
  if (beforeStart) {
    const r = await startReplicas(1, extra);
    await stopReplicas(r);
    await beforeStart();
  }
  const daemons = await startReplicas(replicas, extra);
  const before = await serverCounters();
  const ticks0 = hostTicks();
  // Clock: the server's, from the first insert to the last finished_at. The bench polls
  // slowly so that its own counting does not load the server it measures.
  const [{ t0 }] = (await q('SELECT NOW(3) AS t0')) as unknown as [{ t0: string }];
  await insertNoops(N, JOB_MS);
  const firstId = beforeStart ? BIG_ROWS : 0;
  // Host CPU is read at each look; the last look before the end closes the window, so
  // the idle wait for the final look does not dilute it.
  let ticks1 = ticks0;
  await until(async () => {
    const done = Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done' AND id > ?`, [firstId]))[0]?.n) >= N;
    if (!done) ticks1 = hostTicks();
    return done;
  }, 600_000, 250);
  const after = await serverCounters();
  const [{ s: seconds }] = (await q(`SELECT TIMESTAMPDIFF(MICROSECOND, ?, MAX(finished_at)) / 1e6 AS s FROM ${DB}.jobs WHERE id > ?`, [t0, firstId])) as unknown as [{ s: number }];
  const peak = await stopReplicas(daemons);
  const { p50, p99 } = await pickupPercentiles(firstId);
  const perWorker = await q(`SELECT worker, COUNT(*) n FROM ${DB}.jobs WHERE id > ? GROUP BY worker`, [beforeStart ? BIG_ROWS : 0]);
  return {
    scenario,
    replicas,
    n: N,
    jobs_per_s: Math.round(N / Number(seconds)),
    statements_per_job: round((after.statements - before.statements) / N, 4),
    idle_statements_per_s: null,
    p50_pickup_ms: p50,
    p99_pickup_ms: p99,
    peak_rss_mb: peak,
    db_cpu_us_per_job: Math.round(((after.cpuS - before.cpuS) * 1e6) / N),
    rows_read_per_job: round((after.rowsRead - before.rowsRead) / N, 1),
    host_cpu_busy_pct: ticks0 && ticks1 ? Math.round((100 * (ticks1.busy - ticks0.busy)) / (ticks1.total - ticks0.total)) : null,
    cores: availableParallelism(),
    concurrency: Number(CONCURRENCY),
    poll_ms: Number(POLL_MS),
    job_ms: JOB_MS,
    jobs_per_replica: perWorker.map((r) => Number(r.n)),
  };
}

export async function idle(): Promise<Result> {
  await resetDatabase();
  const daemons = await startReplicas(1, {});
  await new Promise((r) => setTimeout(r, 2000)); // past start-up
  const before = await statements();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const perSecond = ((await statements()) - before) / ((performance.now() - t0) / 1000);
  const peak = await stopReplicas(daemons);
  return { scenario: 'idle', replicas: 1, n: 0, jobs_per_s: null, statements_per_job: null, idle_statements_per_s: round(perSecond, 3), p50_pickup_ms: null, p99_pickup_ms: null, peak_rss_mb: peak, poll_ms: 1000, seconds: IDLE_S };
}

export async function latency(): Promise<Result> {
  await resetDatabase();
  const daemons = await startReplicas(1, {});
  const before = await statements();
  const deadline = Date.now() + TRICKLE_S * 1000;
  let n = 0;
  while (Date.now() < deadline) {
    await q(`INSERT INTO ${DB}.jobs (type, payload) VALUES ('sleep', '{"ms":0}')`);
    n++;
    // Sparse arrivals at random instants: the replica is idle between most of them.
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 700));
  }
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done'`))[0]?.n) >= n, 30_000);
  const used = (await statements()) - before;
  const peak = await stopReplicas(daemons);
  const { p50, p99 } = await pickupPercentiles();
  return { scenario: 'latency', replicas: 1, n, jobs_per_s: null, statements_per_job: round(used / n, 3), idle_statements_per_s: null, p50_pickup_ms: p50, p99_pickup_ms: p99, peak_rss_mb: peak, poll_ms: 1000 };
}

/** Steady arrivals below capacity (the default poll interval): pickup latency under load. */
export async function load(): Promise<Result> {
  await resetDatabase();
  const daemons = await startReplicas(1, { SLUICE_CONCURRENCY: CONCURRENCY, SLUICE_RATE: '1000000' });
  const before = await statements();
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((LOAD_RATE * tickMs) / 1000));
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < LOAD_S * 1000) {
    const next = started + ((n / perTick) + 1) * tickMs;
    await q(`INSERT INTO ${DB}.jobs (type, payload) VALUES ?`, [Array.from({ length: perTick }, () => ['sleep', '{"ms":0}'])]);
    n += perTick;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done'`))[0]?.n) >= n, 60_000, 250);
  const used = (await statements()) - before;
  const peak = await stopReplicas(daemons);
  const { p50, p99 } = await pickupPercentiles();
  return { scenario: 'load', replicas: 1, n, jobs_per_s: Math.round(n / LOAD_S), statements_per_job: round(used / n, 4), idle_statements_per_s: null, p50_pickup_ms: p50, p99_pickup_ms: p99, peak_rss_mb: peak, poll_ms: 1000, arrival_rate: LOAD_RATE };
}

export async function rate(): Promise<Result> {
  await resetDatabase();
  const daemons = await startReplicas(1, { SLUICE_RATE: '50', SLUICE_CONCURRENCY: '50' });
  await insertNoops(RATE_N);
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done'`))[0]?.n) >= RATE_N, 120_000);
  const peak = await stopReplicas(daemons);
  const starts = (await q(`SELECT started_at FROM ${DB}.jobs ORDER BY started_at`)).map((r) => Date.parse(String(r.started_at).replace(' ', 'T') + 'Z'));
  // A token bucket allows burst + rate × T starts in any window of T: over the whole run
  // the bucket's initial SLUICE_BURST (50) tokens come free, the rest at the rate.
  const measured = (starts.length - 1 - 50) / ((starts.at(-1)! - starts[0]!) / 1000);
  const { p50, p99 } = await pickupPercentiles();
  return { scenario: 'rate', replicas: 1, n: RATE_N, jobs_per_s: round(measured, 2), statements_per_job: null, idle_statements_per_s: null, p50_pickup_ms: p50, p99_pickup_ms: p99, peak_rss_mb: peak, target_rate: 50, error_pct: round(((measured - 50) / 50) * 100, 2) };
}

export async function bigTable(): Promise<Result> {
  const r = await throughput('big-table', 1, async () => {
    await q(
      `INSERT INTO ${DB}.jobs (type, payload, status, attempts, started_at, finished_at, result)
       SELECT 'sleep', '{"ms":0}', 'done', 1, NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 HOUR, '{"slept":0}' FROM ${DB}.seq_1_to_${BIG_ROWS}`,
    );
    await q(`ANALYZE TABLE ${DB}.jobs`);
  });
  return { ...r, finished_rows: BIG_ROWS };
}
