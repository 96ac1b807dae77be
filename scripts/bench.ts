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
 * `row-cost` (not in the default set): the database's CPU for a no-op job's claim and outcome
 * writes, no daemon, per schema variant (BENCH_ROW_COST_VARIANTS, _REPS, _BATCH); see
 * scripts/bench/row-cost.ts.
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
 * 10000000 for the figure: seeding takes minutes). Each prints idle rows read and
 * server CPU per second and drain jobs/s with the backlog next to the empty table's
 * (measured just before, in the same run). The backlog sits in the queue that is drained: the worst case.
 * After seeding, the bench waits for InnoDB to flush the pages it dirtied (BENCH_SETTLE_S).
 *
 * The throughput scenarios also print the server's own cost of the daemons' work:
 * db_cpu_us_per_job (userstat CPU_TIME) and rows_read_per_job (ROWS_READ), and how busy the
 * host's cores were (host_cpu_busy_pct: near 100 means the run was CPU-bound, database and
 * daemons together, and more replicas on the same host cannot drain faster).
 *
 * This file is the entry point and the list of scenarios; the harness (config, db,
 * counters, replicas) and one module per scenario family are in scripts/bench/.
 */
import { benchVsBullmq } from './bench-vs-bullmq.js';
import { blockedKeys, hugeHistory, pausedBacklog, scheduledBacklog } from './bench/backlogs.js';
import { DB, SCENARIOS } from './bench/config.js';
import { dashboard } from './bench/dashboard.js';
import { q, root } from './bench/db.js';
import { fanIn } from './bench/fan-in.js';
import type { Result } from './bench/harness.js';
import { running } from './bench/replicas.js';
import { rowCost } from './bench/row-cost.js';
import { bigTable, idle, latency, load, rate, throughput } from './bench/throughput.js';

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
  // Not in the default list: the database's cost of a job's two row writes, no daemon.
  runs['row-cost'] = rowCost;
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
