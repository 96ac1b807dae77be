/**
 * `npm run bench`: real daemon processes against the real database; one JSON line per
 * scenario with: scenario, replicas, n, jobs_per_s, statements_per_job,
 * idle_statements_per_s, p50_pickup_ms, p99_pickup_ms, peak_rss_mb.
 *
 * Statements are counted by the server, not by the daemon: MariaDB's per-user statistics
 * (`userstat`) for a dedicated user `sluice_bench` that only the daemons use. The bench
 * itself connects as root. Needs MariaDB (userstat) and a root login on the server
 * resolveDatabaseServer() picks: DATABASE_URL's, else 127.0.0.1:3306, else a private one.
 *
 * Knobs (environment): BENCH_N (20000), BENCH_CONCURRENCY (50), BENCH_SCENARIOS (all,
 * comma list: the default set, or any scenario by name), BENCH_IDLE_S (60), BENCH_TRICKLE_S (45), BENCH_RATE_N (500),
 * BENCH_LOAD_RATE (2000 jobs/s) and BENCH_LOAD_S (10) for the steady-load scenario,
 * BENCH_BIG_ROWS (1000000), BENCH_POLL_MS (poll interval of the throughput scenarios, 200).
 * BENCH_JOB_MS (0: each throughput job sleeps this long; 20 stands for I/O-bound jobs).
 * BENCH_FANIN_N (10000): children of the fan-in scenario's one parent. BENCH_DB (sluice_bench):
 * the database and user of the run (one per bench when several share a server).
 * `vs-bullmq` (not in the default set): sluice and BullMQ side by side through the shared
 * peers harness, BENCH_VS_N (20000,100000) × BENCH_VS_REPS (3); see scripts/bench-vs-bullmq.ts.
 * BENCH_NODE_ARGS: extra node flags for the daemons (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
 * BENCH_DB / BENCH_USER (sluice_bench / BENCH_DB): the database and the daemons' user.
 * Any SLUICE_* variable set for the bench is passed to the daemons and wins.
 *
 * Backlog scenarios (flat cost, docs/flat-cost.md; not in the default set): one replica
 * at default settings idles for BENCH_BACKLOG_IDLE_S (20) s, then drains BENCH_N due
 * no-op jobs with the throughput settings, first on an empty table, then with a backlog
 * of jobs that cannot start: `scheduled-backlog` (BENCH_SCHEDULED_ROWS, 1000000, with
 * run_at tomorrow, plus BENCH_PAUSED_ROWS, 200000, paused), `paused-backlog`
 * (BENCH_PAUSED_ROWS paused), `blocked-keys` (BENCH_BLOCKED_ROWS, 200000, behind 10
 * concurrency keys held by running jobs), `huge-history` (BENCH_HISTORY_ROWS, 1000000;
 * 10000000 for the issue's figure: seeding takes minutes). Each prints idle rows read and
 * server CPU per second and drain jobs/s with the backlog next to the empty table's
 * (measured just before, in the same run). The backlog sits in the queue that is drained: the worst case.
 * After seeding, the bench waits for InnoDB to flush the pages it dirtied (BENCH_SETTLE_S).
 *
 * The throughput scenarios also print the server's own cost of the daemons' work:
 * db_cpu_us_per_job (userstat CPU_TIME) and rows_read_per_job (ROWS_READ), and how busy the
 * host's cores were (host_cpu_busy_pct: near 100 means the run was CPU-bound, database and
 * daemons together, and more replicas on the same host cannot drain faster).
 *
 * Over 300 lines on purpose: each scenario is one short function over the helpers above
 * it, and the file reads top to bottom as the list of what is measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { benchVsBullmq } from './bench-vs-bullmq.js';
import { dashboardPages, pageServerTime, seedFinished } from './dashboard-pages.js';
import { resolveDatabaseServer } from './local-mysql/database-url.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const env = process.env;
const N = Number(env.BENCH_N ?? 20_000);
const CONCURRENCY = env.BENCH_CONCURRENCY ?? '50';
const IDLE_S = Number(env.BENCH_IDLE_S ?? 60);
const TRICKLE_S = Number(env.BENCH_TRICKLE_S ?? 45);
const RATE_N = Number(env.BENCH_RATE_N ?? 500);
const LOAD_RATE = Number(env.BENCH_LOAD_RATE ?? 2000);
const LOAD_S = Number(env.BENCH_LOAD_S ?? 10);
const BIG_ROWS = Number(env.BENCH_BIG_ROWS ?? 1_000_000);
const POLL_MS = env.BENCH_POLL_MS ?? '200';
/** How long each throughput job sleeps: 0 is a no-op; 20 ms stands for a job waiting on I/O. */
const JOB_MS = Number(env.BENCH_JOB_MS ?? 0);
/** Database and user of the run: another name keeps two runs on one server apart (their counters too). */
const DB = env.BENCH_DB ?? 'sluice_bench';
const USER = env.BENCH_USER ?? DB;
const SCENARIOS = (env.BENCH_SCENARIOS ?? 'throughput,throughput-3,idle,load,latency,rate,big-table,fan-in').split(',').map((s) => s.trim());
/** Children of the fan-in scenario's parent (and plain jobs of its baseline). */
const FANIN_N = Number(env.BENCH_FANIN_N ?? 10_000);
/** Finished rows the dashboard scenario measures its pages at, in turn (add 10000000 when there is time: ~4 min to seed here per 1 M). */
const DASHBOARD_ROWS = (env.BENCH_DASHBOARD_ROWS ?? '10000,1000000').split(',').map(Number);
const DASHBOARD_PORT = Number(env.BENCH_DASHBOARD_PORT ?? 19191);
const BACKLOG_IDLE_S = Number(env.BENCH_BACKLOG_IDLE_S ?? 20);
const SCHEDULED_ROWS = Number(env.BENCH_SCHEDULED_ROWS ?? 1_000_000);
const PAUSED_ROWS = Number(env.BENCH_PAUSED_ROWS ?? 200_000);
const BLOCKED_ROWS = Number(env.BENCH_BLOCKED_ROWS ?? 200_000);
const HISTORY_ROWS = Number(env.BENCH_HISTORY_ROWS ?? 1_000_000);

const server = new URL((await resolveDatabaseServer({ log: (line) => process.stderr.write(`bench: ${line}\n`) })).url);
const rootUrl = `mysql://${server.username || 'root'}${server.password ? `:${server.password}` : ''}@${server.hostname}:${server.port || 3306}/`;
const daemonUrl = `mysql://${USER}:bench@${server.hostname}:${server.port || 3306}/${DB}`;
const root = mysql.createPool({ uri: rootUrl, connectionLimit: 4, dateStrings: true, charset: 'utf8mb4_unicode_ci' });

interface Result {
  scenario: string;
  replicas: number;
  n: number;
  jobs_per_s: number | null;
  statements_per_job: number | null;
  idle_statements_per_s: number | null;
  p50_pickup_ms: number | null;
  p99_pickup_ms: number | null;
  peak_rss_mb: number | null;
  [extra: string]: unknown;
}

async function q<T = mysql.RowDataPacket[]>(sql: string, params: unknown[] = []): Promise<T> {
  return (await root.query(sql, params))[0] as T;
}

async function resetDatabase(): Promise<void> {
  await q(`DROP DATABASE IF EXISTS ${DB}`);
  await q(`CREATE DATABASE ${DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await q(`CREATE USER IF NOT EXISTS '${USER}'@'%' IDENTIFIED BY 'bench'`);
  await q(`GRANT ALL ON ${DB}.* TO '${USER}'@'%'`);
  await q('SET GLOBAL userstat = 1');
}

/** Statements the daemons' user has sent so far, as the server counts them. */
async function statements(): Promise<number> {
  return (await serverCounters()).statements;
}

interface Counters {
  statements: number;
  /** Server CPU seconds spent on the daemons' statements. */
  cpuS: number;
  rowsRead: number;
}

/** The server's own counters for the daemons' user. */
async function serverCounters(): Promise<Counters> {
  const rows = await q(
    'SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS AS n, CPU_TIME AS cpu, ROWS_READ AS rows_read FROM information_schema.USER_STATISTICS WHERE USER = ?',
    [USER],
  );
  return { statements: Number(rows[0]?.n ?? 0), cpuS: Number(rows[0]?.cpu ?? 0), rowsRead: Number(rows[0]?.rows_read ?? 0) };
}

/** Busy and total CPU ticks of this host so far (Linux /proc/stat), to tell a CPU-bound run. */
function hostTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function passThrough(): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('SLUICE_') && e[1] !== undefined));
}

interface Replica {
  proc: ChildProcess;
  exited: Promise<unknown>;
  peakRssMb(): number;
}

/** Replicas still running: stopped on the way out, even when a scenario fails. */
const running = new Set<ChildProcess>();

/** Progress on stderr (stdout carries only the JSON lines). */
function progress(message: string): void {
  process.stderr.write(`bench: ${new Date().toISOString()} ${message}\n`);
}

function startReplica(id: string, extra: Record<string, string>): Replica {
  const proc = spawn(process.execPath, [...(env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), 'dist/main.js'], {
    cwd: ROOT,
    // SLUICE_* in the bench's own environment pass through: they override the scenario's.
    env: { PATH: env.PATH ?? '', DATABASE_URL: daemonUrl, SLUICE_WORKER_ID: id, SLUICE_HTTP_PORT: '0', SLUICE_DASHBOARD_PORT: '0', LOG_LEVEL: 'warn', ...extra, ...passThrough() },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  running.add(proc);
  const exited = new Promise((r) => proc.on('exit', r));
  void exited.then(() => running.delete(proc));
  return {
    proc,
    exited,
    peakRssMb: () => {
      try {
        const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1];
        return kb ? Math.round(Number(kb) / 1024) : NaN;
      } catch {
        return NaN;
      }
    },
  };
}

async function startReplicas(count: number, extra: Record<string, string>): Promise<Replica[]> {
  const replicas = Array.from({ length: count }, (_, i) => startReplica(`bench-${i + 1}`, extra));
  // Registered: each replica's row (a bench scenario may keep rows of its own there).
  const ids = Array.from({ length: count }, (_, i) => `bench-${i + 1}`);
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.job_workers WHERE id IN (?)`, [ids]).catch(() => [{ n: 0 }]))[0]?.n) === count, 60_000);
  return replicas;
}

async function stopReplicas(replicas: Replica[]): Promise<number> {
  const peak = Math.max(...replicas.map((r) => r.peakRssMb()));
  for (const r of replicas) r.proc.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.exited));
  return peak;
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: gave up after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function insertNoops(n: number, ms = 0): Promise<void> {
  for (let done = 0; done < n; done += 5000) {
    const rows = Array.from({ length: Math.min(5000, n - done) }, () => ['sleep', JSON.stringify({ ms })]);
    await q(`INSERT INTO ${DB}.jobs (type, payload) VALUES ?`, [rows]);
  }
}

async function pickupPercentiles(afterId = 0): Promise<{ p50: number; p99: number }> {
  const rows = await q(`SELECT TIMESTAMPDIFF(MICROSECOND, run_at, started_at) / 1000 AS ms FROM ${DB}.jobs WHERE started_at IS NOT NULL AND id > ? ORDER BY ms`, [afterId]);
  const at = (p: number): number => Math.round(Number(rows[Math.min(rows.length - 1, Math.floor(p * rows.length))]?.ms ?? NaN) * 10) / 10;
  return { p50: at(0.5), p99: at(0.99) };
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function throughput(scenario: string, replicas: number, beforeStart?: () => Promise<void>): Promise<Result> {
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

async function idle(): Promise<Result> {
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

async function latency(): Promise<Result> {
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
async function load(): Promise<Result> {
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

async function rate(): Promise<Result> {
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

async function bigTable(): Promise<Result> {
  const r = await throughput('big-table', 1, async () => {
    await q(
      `INSERT INTO ${DB}.jobs (type, payload, status, attempts, started_at, finished_at, result)
       SELECT 'sleep', '{"ms":0}', 'done', 1, NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 HOUR, '{"slept":0}' FROM ${DB}.seq_1_to_${BIG_ROWS}`,
    );
    await q(`ANALYZE TABLE ${DB}.jobs`);
  });
  return { ...r, finished_rows: BIG_ROWS };
}

/**
 * Fan-in: one parent, BENCH_FANIN_N children (10,000), 3 replicas. First the same number
 * of plain jobs (the baseline for statements per job), then the workflow as a user writes
 * it in SQL: the parent inserted `waiting`, the children inserted with its id, then the
 * seal. Reports statements per child against per plain job, the time from the seal and
 * from the last child's end to the parent's start, and whether the counters are exact.
 */
async function fanIn(): Promise<Result> {
  const n = FANIN_N;
  await resetDatabase();
  const extra = { SLUICE_CONCURRENCY: CONCURRENCY, SLUICE_RATE: '1000000', SLUICE_POLL_MS: POLL_MS };
  const daemons = await startReplicas(3, extra);
  const done = async (where: string): Promise<number> => Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done' AND ${where}`))[0]?.n);

  const plainBefore = await statements();
  await insertNoops(n);
  await until(async () => (await done('parent_id IS NULL')) >= n, 600_000, 250);
  const plainStatements = (await statements()) - plainBefore;

  const before = await statements();
  const parent = (await q<mysql.ResultSetHeader>(`INSERT INTO ${DB}.jobs (type, payload, status) VALUES ('sleep', '{"ms":0}', 'waiting')`)).insertId;
  for (let i = 0; i < n; i += 5000) {
    const rows = Array.from({ length: Math.min(5000, n - i) }, () => ['sleep', '{"ms":0}', parent]);
    await q(`INSERT INTO ${DB}.jobs (type, payload, parent_id) VALUES ?`, [rows]);
  }
  const [{ sealed_at }] = (await q('SELECT NOW(3) AS sealed_at')) as unknown as [{ sealed_at: string }];
  await q(`UPDATE ${DB}.jobs SET deps_total = ? WHERE id = ?`, [n, parent]);
  await until(async () => (await done(`id = ${Number(parent)}`)) === 1, 600_000, 100);
  const childStatements = (await statements()) - before;
  const peak = await stopReplicas(daemons);

  const [p] = (await q(
    `SELECT deps_done, deps_failed, attempts, TIMESTAMPDIFF(MICROSECOND, ?, started_at) / 1000 AS seal_ms,
            TIMESTAMPDIFF(MICROSECOND, (SELECT MAX(finished_at) FROM ${DB}.jobs WHERE parent_id = ?), started_at) / 1000 AS last_child_ms
     FROM ${DB}.jobs WHERE id = ?`,
    [sealed_at, parent, parent],
  )) as unknown as [{ deps_done: number; deps_failed: number; attempts: number; seal_ms: number; last_child_ms: number }];
  const [c] = (await q(`SELECT COUNT(*) AS n, SUM(status = 'done') AS done, SUM(counted_as = 'done') AS counted FROM ${DB}.jobs WHERE parent_id = ?`, [
    parent,
  ])) as unknown as [{ n: number; done: number; counted: number }];
  const perPlain = plainStatements / n;
  // The parent's own run is one job among the children's: its statements are counted in.
  const perChild = childStatements / n;
  return {
    scenario: 'fan-in',
    replicas: 3,
    n,
    jobs_per_s: null,
    statements_per_job: round(perChild, 4),
    idle_statements_per_s: null,
    p50_pickup_ms: null,
    p99_pickup_ms: null,
    peak_rss_mb: peak,
    statements_per_plain_job: round(perPlain, 4),
    statements_per_child_over_plain: round(perChild - perPlain, 4),
    seal_to_parent_start_ms: Math.round(Number(p.seal_ms)),
    last_child_to_parent_start_ms: Math.round(Number(p.last_child_ms)),
    counters_exact: Number(p.deps_done) === n && Number(p.deps_failed) === 0 && Number(c.done) === n && Number(c.counted) === n,
    parent_attempts: Number(p.attempts),
    concurrency: Number(CONCURRENCY),
    poll_ms: Number(POLL_MS),
  };
}

/**
 * Dashboard: one replica serving the dashboard; finished rows seeded (MariaDB sequence
 * engine) up to each of BENCH_DASHBOARD_ROWS in turn, then each page's server time
 * (Server-Timing, median of 5 after a warm-up). A page that is O(history) shows it here.
 */
async function dashboard(): Promise<Result> {
  await resetDatabase();
  const daemon = startReplica('bench-1', { SLUICE_DASHBOARD_PORT: String(DASHBOARD_PORT), SLUICE_POLL_MS: '1000' });
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.job_workers`).catch(() => [{ n: 0 }]))[0]?.n) === 1, 60_000);
  const pool = mysql.createPool({ uri: daemonUrl, connectionLimit: 2, dateStrings: true, charset: 'utf8mb4_unicode_ci' });
  const base = `http://127.0.0.1:${DASHBOARD_PORT}`;
  const [p] = await pool.query<mysql.ResultSetHeader>("INSERT INTO jobs (queue, type, status) VALUES ('q1', 'merge', 'waiting')");
  await pool.query("INSERT INTO jobs (queue, type, status, finished_at, parent_id) SELECT 'q1', 'sleep', 'done', NOW(3), ? FROM seq_1_to_200", [p.insertId]);
  const pages: Record<string, Record<string, number>> = {};
  const seedSeconds: Record<string, number> = {};
  try {
    for (const rows of DASHBOARD_ROWS) {
      const started = Date.now();
      await seedFinished(pool, rows);
      seedSeconds[rows] = Math.round((Date.now() - started) / 1000);
      // Two snapshot ticks (5 s apart at a 1 s poll) so the counts are current.
      await new Promise((r) => setTimeout(r, 11_000));
      for (const path of dashboardPages(p.insertId)) (pages[path] ??= {})[rows] = await pageServerTime(base, path);
    }
  } finally {
    await pool.end();
  }
  const peak = await stopReplicas([daemon]);
  return { scenario: 'dashboard', replicas: 1, n: 0, jobs_per_s: null, statements_per_job: null, idle_statements_per_s: null, p50_pickup_ms: null, p99_pickup_ms: null, peak_rss_mb: peak, server_ms_by_page_and_rows: pages, seed_seconds: seedSeconds };
}

/** Idle cost of one replica at default settings: the server's counters over BENCH_BACKLOG_IDLE_S. */
interface IdleCost {
  rowsReadPerS: number;
  cpuMsPerS: number;
  statementsPerS: number;
}

/**
 * Starts one replica at default settings, lets it settle (a replica that finds a backlog
 * may first move it: parking, say), and measures its idle cost.
 */
async function idleCost(): Promise<IdleCost> {
  progress('idle: starting a replica');
  const daemons = await startReplicas(1, {});
  progress('idle: settling');
  try {
    // Settled: a whole second with at most 3 statements, or 5 minutes.
    const settleBy = Date.now() + 300_000;
    for (let last = await statements(); Date.now() < settleBy; ) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await statements();
      if (now - last <= 3) break;
      last = now;
    }
    progress('idle: measuring');
    const before = await serverCounters();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, BACKLOG_IDLE_S * 1000));
    const after = await serverCounters();
    const s = (performance.now() - t0) / 1000;
    return {
      rowsReadPerS: round((after.rowsRead - before.rowsRead) / s, 1),
      cpuMsPerS: round(((after.cpuS - before.cpuS) * 1000) / s, 2),
      statementsPerS: round((after.statements - before.statements) / s, 2),
    };
  } finally {
    await stopReplicas(daemons);
  }
}

/** Drains BENCH_N due no-op jobs inserted at once (throughput settings); jobs/s by the server's clock. */
async function drain(): Promise<number> {
  progress('drain');
  const daemons = await startReplicas(1, { SLUICE_CONCURRENCY: CONCURRENCY, SLUICE_RATE: '1000000', SLUICE_POLL_MS: POLL_MS });
  try {
    const [{ first }] = (await q(`SELECT COALESCE(MAX(id), 0) AS first FROM ${DB}.jobs`)) as unknown as [{ first: number }];
    const [{ t0 }] = (await q('SELECT NOW(3) AS t0')) as unknown as [{ t0: string }];
    await insertNoops(N, JOB_MS);
    await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.jobs WHERE status = 'done' AND id > ?`, [first]))[0]?.n) >= N, 600_000, 250);
    const [{ s }] = (await q(`SELECT TIMESTAMPDIFF(MICROSECOND, ?, MAX(finished_at)) / 1e6 AS s FROM ${DB}.jobs WHERE id > ?`, [t0, first])) as unknown as [{ s: number }];
    return Math.round(N / Number(s));
  } finally {
    await stopReplicas(daemons);
  }
}

/**
 * Waits until InnoDB has written out what seeding dirtied — at most 10 % of the buffer
 * pool dirty, as a server at rest keeps a few percent — for at most BENCH_SETTLE_S (60 s):
 * right after a million-row INSERT the server flushes pages for minutes, and a drain
 * measured meanwhile measures that flushing, not the claim.
 */
async function innodbSettled(): Promise<void> {
  const deadline = Date.now() + Number(env.BENCH_SETTLE_S ?? 60) * 1000;
  while (Date.now() < deadline) {
    const rows = await q("SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total')");
    const v = Object.fromEntries(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
    if ((v.Innodb_buffer_pool_pages_dirty ?? 0) <= 0.1 * (v.Innodb_buffer_pool_pages_total ?? 0)) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  progress('InnoDB still flushing after BENCH_SETTLE_S; measuring anyway');
}

/** A fresh database with the schema applied (a replica runs the migrations). */
async function migrated(): Promise<void> {
  await resetDatabase();
  await stopReplicas(await startReplicas(1, {}));
}

/**
 * The empty table's idle cost and drain speed, measured right before each backlog: on a
 * shared machine, figures taken minutes apart differ more than the code does.
 */
async function emptyTable(): Promise<{ idle: IdleCost; jobsPerS: number }> {
  progress('empty table');
  await migrated();
  await innodbSettled();
  const idle = await idleCost();
  await innodbSettled();
  return { idle, jobsPerS: await drain() };
}

/**
 * One backlog scenario: the empty table's figures, then a fresh database seeded by
 * `seed` (and analysed), its idle cost and its drain, side by side.
 */
async function backlog(scenario: string, rows: Record<string, number>, seed: () => Promise<void>, during?: () => () => void): Promise<Result> {
  const empty = await emptyTable();
  await migrated();
  progress(`${scenario}: seeding`);
  const seeded = performance.now();
  await seed();
  await q(`ANALYZE TABLE ${DB}.jobs`);
  const seedS = round((performance.now() - seeded) / 1000, 1);
  progress(`${scenario}: seeded in ${seedS} s; waiting for InnoDB to flush`);
  await innodbSettled();
  const stop = during?.();
  try {
    const idle = await idleCost();
    // What the replica moved while it settled (parking, say) is flushed before the drain.
    await innodbSettled();
    const jobsPerS = await drain();
    return {
      scenario,
      replicas: 1,
      n: N,
      jobs_per_s: jobsPerS,
      statements_per_job: null,
      idle_statements_per_s: idle.statementsPerS,
      p50_pickup_ms: null,
      p99_pickup_ms: null,
      peak_rss_mb: null,
      ...rows,
      seed_s: seedS,
      idle_rows_read_per_s: idle.rowsReadPerS,
      idle_rows_read_per_s_empty: empty.idle.rowsReadPerS,
      idle_db_cpu_ms_per_s: idle.cpuMsPerS,
      idle_db_cpu_ms_per_s_empty: empty.idle.cpuMsPerS,
      idle_statements_per_s_empty: empty.idle.statementsPerS,
      jobs_per_s_empty: empty.jobsPerS,
      drain_ratio: round(jobsPerS / empty.jobsPerS, 2),
      idle_s: BACKLOG_IDLE_S,
    };
  } finally {
    stop?.();
  }
}

/** Pending no-op jobs of the default queue, `extra` column values, seeded with the sequence engine. */
async function seedPending(rows: number, columns: string, values: string): Promise<void> {
  if (rows <= 0) return;
  await q(`INSERT INTO ${DB}.jobs (type, payload${columns}) SELECT 'sleep', '{"ms":0}'${values} FROM ${DB}.seq_1_to_${rows}`);
}

const scheduledBacklog = (): Promise<Result> =>
  backlog('scheduled-backlog', { scheduled_rows: SCHEDULED_ROWS, paused_rows: PAUSED_ROWS }, async () => {
    await seedPending(SCHEDULED_ROWS, ', run_at', ', NOW(3) + INTERVAL 1 DAY + INTERVAL seq MICROSECOND');
    await seedPending(PAUSED_ROWS, ', paused', ', TRUE');
  });

const pausedBacklog = (): Promise<Result> =>
  backlog('paused-backlog', { paused_rows: PAUSED_ROWS }, () => seedPending(PAUSED_ROWS, ', paused', ', TRUE'));

/**
 * BENCH_BLOCKED_ROWS jobs behind 10 concurrency keys, each held by a running job of a
 * holder process that the bench keeps alive (its heartbeat), so the keys stay busy and
 * the replica's slots stay free for the drain.
 */
const blockedKeys = (): Promise<Result> =>
  backlog(
    'blocked-keys',
    { blocked_rows: BLOCKED_ROWS, busy_keys: 10 },
    async () => {
      await q(`INSERT INTO ${DB}.job_workers (id, host, pid, version, queues) VALUES ('bench-holder', 'bench', 1, 'bench', '*')`);
      await q(
        `INSERT INTO ${DB}.jobs (type, payload, status, worker, attempts, queued_at, started_at, concurrency_key, timeout_ms)
         SELECT 'sleep', '{"ms":null}', 'running', 'bench-holder', 1, NOW(3), NOW(3), CONCAT('key-', seq), 86400000 FROM ${DB}.seq_0_to_9`,
      );
      await seedPending(BLOCKED_ROWS, ', concurrency_key', ", CONCAT('key-', seq % 10)");
    },
    () => {
      const beat = setInterval(() => void q(`UPDATE ${DB}.job_workers SET heartbeat_at = NOW(3) WHERE id = 'bench-holder'`).catch(() => undefined), 1000);
      return () => clearInterval(beat);
    },
  );

const hugeHistory = (): Promise<Result> =>
  backlog('huge-history', { finished_rows: HISTORY_ROWS }, async () => {
    // In slices: one statement of ten million rows would hold a huge undo log.
    for (let from = 0; from < HISTORY_ROWS; from += 1_000_000) {
      const rows = Math.min(1_000_000, HISTORY_ROWS - from);
      await q(
        `INSERT INTO ${DB}.jobs (type, payload, status, attempts, started_at, finished_at, result)
         SELECT 'sleep', '{"ms":0}', 'done', 1, NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 HOUR, '{"slept":0}' FROM ${DB}.seq_1_to_${rows}`,
      );
    }
  });

async function main(): Promise<void> {
  const runs: Record<string, () => Promise<Result>> = {
    throughput: () => throughput('throughput', 1),
    'throughput-3': () => throughput('throughput-3', 3),
    idle,
    load,
    latency,
    rate,
    'big-table': bigTable,
    'fan-in': fanIn,
    'scheduled-backlog': scheduledBacklog,
    'paused-backlog': pausedBacklog,
    'blocked-keys': blockedKeys,
    'huge-history': hugeHistory,
  };
  // Not in the default list: it seeds millions of rows. BENCH_SCENARIOS=dashboard.
  runs.dashboard = dashboard;
  for (const name of SCENARIOS) {
    if (name === 'vs-bullmq') {
      // Not in the default list: it installs the peers harness and runs BullMQ on Redis.
      for (const line of benchVsBullmq()) process.stdout.write(`${JSON.stringify(line)}\n`);
      continue;
    }
    const run = runs[name];
    if (!run) throw new Error(`bench: unknown scenario "${name}" (known: ${Object.keys(runs).join(', ')}, vs-bullmq)`);
    process.stdout.write(`${JSON.stringify(await run())}\n`);
  }
  await q(`DROP DATABASE IF EXISTS ${DB}`);
  await root.end();
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  for (const proc of running) proc.kill('SIGKILL');
  await root.end().catch(() => undefined);
  process.exit(1);
});
