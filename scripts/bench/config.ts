/** The bench's knobs, read once from the environment (documented in scripts/bench.ts). */
const env = process.env;

export const N = Number(env.BENCH_N ?? 20_000);
export const CONCURRENCY = env.BENCH_CONCURRENCY ?? '50';
export const IDLE_S = Number(env.BENCH_IDLE_S ?? 60);
export const TRICKLE_S = Number(env.BENCH_TRICKLE_S ?? 45);
export const RATE_N = Number(env.BENCH_RATE_N ?? 500);
export const LOAD_RATE = Number(env.BENCH_LOAD_RATE ?? 2000);
export const LOAD_S = Number(env.BENCH_LOAD_S ?? 10);
export const BIG_ROWS = Number(env.BENCH_BIG_ROWS ?? 1_000_000);
export const POLL_MS = env.BENCH_POLL_MS ?? '200';
/** How long each throughput job sleeps: 0 is a no-op; 20 ms stands for a job waiting on I/O. */
export const JOB_MS = Number(env.BENCH_JOB_MS ?? 0);
/** Database and user of the run: another name keeps two runs on one server apart (their counters too). */
export const DB = env.BENCH_DB ?? 'sluice_bench';
export const USER = env.BENCH_USER ?? DB;
export const SCENARIOS = (env.BENCH_SCENARIOS ?? 'throughput,throughput-3,idle,load,latency,rate,big-table,fan-in').split(',').map((s) => s.trim());
/** Children of the fan-in scenario's parent (and plain jobs of its baseline). */
export const FANIN_N = Number(env.BENCH_FANIN_N ?? 10_000);
/** Finished rows the dashboard scenario measures its pages at, in turn (add 10000000 when there is time: ~4 min to seed here per 1 M). */
export const DASHBOARD_ROWS = (env.BENCH_DASHBOARD_ROWS ?? '10000,1000000').split(',').map(Number);
export const DASHBOARD_PORT = Number(env.BENCH_DASHBOARD_PORT ?? 19191);
export const BACKLOG_IDLE_S = Number(env.BENCH_BACKLOG_IDLE_S ?? 20);
export const SCHEDULED_ROWS = Number(env.BENCH_SCHEDULED_ROWS ?? 1_000_000);
export const PAUSED_ROWS = Number(env.BENCH_PAUSED_ROWS ?? 200_000);
export const BLOCKED_ROWS = Number(env.BENCH_BLOCKED_ROWS ?? 200_000);
export const HISTORY_ROWS = Number(env.BENCH_HISTORY_ROWS ?? 1_000_000);
/** Seconds a backlog scenario waits at most for InnoDB to flush what seeding dirtied. */
export const SETTLE_S = Number(env.BENCH_SETTLE_S ?? 60);
/** Extra node flags for the daemons (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`). */
export const NODE_ARGS = (env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** The bench's own SLUICE_* variables: passed to the daemons, where they win. */
export function passThrough(): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('SLUICE_') && e[1] !== undefined));
}
