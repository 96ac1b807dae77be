/**
 * Backlog scenarios (flat cost, docs/flat-cost.md; not in the default set): idle cost and
 * drain speed of one replica with a backlog of jobs that cannot start, next to the empty
 * table's, measured just before in the same run.
 */
import { BACKLOG_IDLE_S, BLOCKED_ROWS, CONCURRENCY, DB, HISTORY_ROWS, JOB_MS, N, PAUSED_ROWS, POLL_MS, SCHEDULED_ROWS, SETTLE_S, USER } from './config.js';
import { serverCounters } from './counters.js';
import { insertNoops, q } from './db.js';
import { progress, round, until, type Result } from './harness.js';
import { migrated, startReplicas, stopReplicas } from './replicas.js';

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
    // Settled: a whole second with at most 3 statements and 10,000 rows read, and no
    // statement running for half a second (the counters move only when one ends: the
    // dashboard's one-off backfill of the last hour reads a big history for seconds), or
    // 5 minutes.
    const settleBy = Date.now() + 300_000;
    for (let last = await serverCounters(); Date.now() < settleBy; ) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await serverCounters();
      const running = await q("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND = 'Query' AND TIME_MS > 500", [USER]);
      if (now.statements - last.statements <= 3 && now.rowsRead - last.rowsRead <= 10_000 && Number(running[0]?.n) === 0) break;
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
 * pool dirty, as a server at rest keeps a few percent — and purged the old row versions
 * that seeding and settling left (a replica that parks 200,000 key-blocked rows rewrites
 * each once: purging them takes the server's second core for a while), for at most
 * BENCH_SETTLE_S (60 s). A drain measured meanwhile measures that flushing and purging,
 * a one-off after the backlog arrives, not the claim beside a backlog that sits still.
 */
async function innodbSettled(): Promise<void> {
  const deadline = Date.now() + SETTLE_S * 1000;
  while (Date.now() < deadline) {
    const rows = await q(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total', 'Innodb_history_list_length')",
    );
    const v = Object.fromEntries(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
    const flushed = (v.Innodb_buffer_pool_pages_dirty ?? 0) <= 0.1 * (v.Innodb_buffer_pool_pages_total ?? 0);
    if (flushed && (v.Innodb_history_list_length ?? 0) <= 100) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  progress('InnoDB still flushing or purging after BENCH_SETTLE_S; measuring anyway');
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

export const scheduledBacklog = (): Promise<Result> =>
  backlog('scheduled-backlog', { scheduled_rows: SCHEDULED_ROWS, paused_rows: PAUSED_ROWS }, async () => {
    await seedPending(SCHEDULED_ROWS, ', run_at', ', NOW(3) + INTERVAL 1 DAY + INTERVAL seq MICROSECOND');
    await seedPending(PAUSED_ROWS, ', paused', ', TRUE');
  });

export const pausedBacklog = (): Promise<Result> =>
  backlog('paused-backlog', { paused_rows: PAUSED_ROWS }, () => seedPending(PAUSED_ROWS, ', paused', ', TRUE'));

/**
 * BENCH_BLOCKED_ROWS jobs behind 10 concurrency keys, each held by a running job of a
 * holder process that the bench keeps alive (its heartbeat), so the keys stay busy and
 * the replica's slots stay free for the drain.
 */
export const blockedKeys = (): Promise<Result> =>
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

export const hugeHistory = (): Promise<Result> =>
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
