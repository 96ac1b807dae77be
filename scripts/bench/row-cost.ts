/**
 * `row-cost` (not in the default set): what the database spends on a no-op job's two row
 * writes, without a daemon. The daemon's own statements (jobsSelectReady + jobsMarkQueued
 * in one ClaimSession transaction, then jobsFinish) drain BENCH_N jobs in claims of
 * BENCH_ROW_COST_BATCH (500, what a claim took at the old prefetch cap of 1000), claims first and then
 * the outcomes, so each phase's server CPU is its own. Server CPU comes from
 * USER_STATISTICS (the bench user's connection threads) and, when the server runs on this
 * host, from /proc (every thread, InnoDB's purge included). Redo bytes per job come from
 * the server's log sequence number (Innodb_lsn_current): every change InnoDB makes, page
 * reorganisations and splits included, is written there first (the background purge that
 * runs meanwhile included).
 *
 * Variants (BENCH_ROW_COST_VARIANTS, comma list, each on a fresh schema, run in turn
 * BENCH_ROW_COST_REPS times; `a+b` applies both): `schema` as migrated; `jobs-list-008`
 * (the dashboard's list index as migrations 007–008 left it, on the virtual `list_key`);
 * `list-on-columns` and `list-group-stored` (a list index on (status, queue, id), or on a
 * stored one-byte status group); `no-spare-bytes` (rows inserted without the room
 * migration 010 keeps in them); `no-jobs-finished`; `no-still-indexes` (without the
 * indexes whose entry a plain job's write leaves where it was); `claim-index-only` (the
 * primary key and jobs_claim only: the floor of this row shape); `run-under-lock` (one
 * row write per job, as held claims do: see fusedDrain), e.g.
 * `run-under-lock,run-under-lock+jobs-list-008`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ClaimSession } from '../../src/db/claim-session.js';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { jobsMarkQueued, jobsSelectReady, type ClaimCursor } from '../../src/db/queries/jobs-claim.js';
import { jobsFinish, type Outcome } from '../../src/db/queries/jobs-outcome.js';
import { jobsFinishHeld } from '../../src/db/queries/jobs-held-claim.js';
import { nextCursor } from '../../src/publishers/claim-cursors.js';
import { DB, N } from './config.js';
import { daemonUrl, insertNoops, q, resetDatabase } from './db.js';
import { serverCounters } from './counters.js';
import { progress, round, type Result } from './harness.js';

const BATCH = Number(process.env.BENCH_ROW_COST_BATCH ?? 500);
const REPS = Number(process.env.BENCH_ROW_COST_REPS ?? 2);
const VARIANTS = (process.env.BENCH_ROW_COST_VARIANTS ?? 'schema,no-spare-bytes,claim-index-only').split(',').map((s) => s.trim());

const ALTERS: Record<string, string[]> = {
  schema: [],
  'jobs-list-008': [
    `ALTER TABLE jobs ADD COLUMN list_key VARCHAR(81) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
       AS (CONCAT(IF(status IN ('queued', 'running'), 'pending', status), '/', queue)) VIRTUAL, ADD KEY jobs_list (list_key, id)`,
  ],
  'list-on-columns': ['ALTER TABLE jobs ADD KEY jobs_list (status, queue, id)'],
  'list-group-stored': [
    `ALTER TABLE jobs ADD COLUMN list_group TINYINT
       AS (IF(status IN ('queued', 'running'), 2, FIELD(status, 'waiting', 'pending', 'queued', 'running', 'done', 'failed', 'cancelled'))) STORED,
       ADD KEY jobs_list (list_group, queue, id)`,
  ],
  'no-jobs-finished': ['ALTER TABLE jobs DROP KEY jobs_finished'],
  'no-still-indexes': [
    `ALTER TABLE jobs DROP KEY jobs_active_concurrency_key, DROP KEY jobs_active_unique_key, DROP KEY jobs_schedule_tick,
       DROP KEY jobs_cancel_pending, DROP KEY jobs_key_waits, DROP KEY jobs_parent, DROP KEY jobs_workflow_todo, DROP KEY jobs_wait_expiry`,
  ],
  'run-under-lock': [
    'CREATE TABLE bench_leases (worker VARCHAR(255) NOT NULL, batch BIGINT NOT NULL, ids JSON NOT NULL, PRIMARY KEY (worker, batch))',
  ],
  // Rows inserted with no spare bytes, as before migration 010: finishes grow them.
  'no-spare-bytes': ['ALTER TABLE jobs ALTER COLUMN spare_bytes SET DEFAULT NULL'],
  'claim-index-only': [
    `ALTER TABLE jobs DROP KEY jobs_active_concurrency_key, DROP KEY jobs_active_unique_key, DROP KEY jobs_schedule_tick,
       DROP KEY jobs_cancel_pending, DROP KEY jobs_finished, DROP KEY jobs_key_waits, DROP KEY jobs_parent,
       DROP KEY jobs_workflow_todo, DROP KEY jobs_wait_expiry`,
  ],
};

/** A variant's ALTERs; `a+b` is both (`run-under-lock+claim-index-only`: that drain on that schema). */
function altersOf(variant: string): string[] {
  return variant.split('+').flatMap((part) => {
    const alters = ALTERS[part];
    if (!alters) throw new Error(`row-cost: unknown variant "${part}" (known: ${Object.keys(ALTERS).join(', ')})`);
    return alters;
  });
}

/** CPU ms of the local server process (all threads), or undefined when it is not on this host. */
function serverProcessCpuMs(): number | undefined {
  try {
    const pid = execFileSync('pidof', ['mariadbd'], { encoding: 'utf8' }).trim().split(' ')[0];
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

async function purged(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const [h] = await q("SELECT COUNT AS n FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'");
    if (Number(h?.n ?? 0) < 100) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A pass that left a job undone measured something else. */
async function assertAllDone(): Promise<void> {
  const [done] = await q(`SELECT COUNT(*) AS n FROM ${DB}.jobs WHERE status = 'done'`);
  if (Number(done?.n) !== N) throw new Error(`row-cost: ${String(done?.n)} of ${N} jobs done`);
}

/** Server process CPU per job between two serverProcessCpuMs() readings. */
function processUsPerJob(fromMs: number | undefined, toMs: number | undefined): number | undefined {
  return fromMs === undefined || toMs === undefined ? undefined : ((toMs - fromMs) * 1000) / N;
}

/** The server's redo log position in bytes (MariaDB Innodb_lsn_current; 0 where missing). */
async function redoLsn(): Promise<number> {
  const [row] = await q("SHOW GLOBAL STATUS LIKE 'Innodb_lsn_current'");
  return Number(row?.Value ?? 0);
}

interface Phase {
  claimUs: number;
  finishUs: number;
  claimRedoBytes: number;
  finishRedoBytes: number;
  /** Every server thread, purge included (undefined: server not on this host). */
  processUs: number | undefined;
}

async function onePass(variant: string): Promise<Phase> {
  await resetDatabase();
  const db = new Database({ url: daemonUrl, connectionLimit: 2 });
  const claims = new ClaimSession(db);
  try {
    await migrate(db);
    for (const sql of altersOf(variant)) await db.run('alter', sql);
    await insertNoops(N);
    await purged();
    const worker = 'row-cost';
    const p0 = serverProcessCpuMs();
    const c0 = await serverCounters();
    const r0 = await redoLsn();
    if (variant.split('+')[0] === 'run-under-lock') return await fusedDrain(db, claims, { p0, c0, r0 });
    const claimed: Outcome[][] = [];
    // Each claim starts after the previous one, as the daemon's do (ClaimCursors): not
    // through the delete-marked entries its claims left at the head of lane 0.
    let after: ClaimCursor | undefined;
    for (let taken = 0; taken < N; ) {
      const rows = await claims.transaction('jobsClaim', async (tx) => {
        const ready = await jobsSelectReady(tx, 'default', BATCH, after);
        if (ready.length > 0) await jobsMarkQueued(tx, worker, ready.map((r) => r.id));
        return ready;
      });
      if (rows.length === 0) throw new Error('row-cost: a claim found nothing before every job was taken');
      after = nextCursor(rows, BATCH);
      taken += rows.length;
      claimed.push(rows.map((r) => ({ id: r.id, attempts: r.attempts, from: 'queued', status: 'done', started: true, startedAt: performance.now(), result: '{"slept":0}' })));
    }
    const c1 = await serverCounters();
    const r1 = await redoLsn();
    for (const batch of claimed) await jobsFinish(db, { worker, outcomes: batch });
    const r2 = await redoLsn();
    await purged();
    const c2 = await serverCounters();
    const p1 = serverProcessCpuMs();
    await assertAllDone();
    return {
      claimUs: ((c1.cpuS - c0.cpuS) * 1e6) / N,
      finishUs: ((c2.cpuS - c1.cpuS) * 1e6) / N,
      claimRedoBytes: (r1 - r0) / N,
      finishRedoBytes: (r2 - r1) / N,
      processUs: processUsPerJob(p0, p1),
    };
  } finally {
    await claims.end();
    await db.end();
  }
}

/**
 * Run under the claim's lock: the claim locks its rows (SELECT … FOR UPDATE SKIP LOCKED)
 * and does not write them; a lease row naming the batch's ids is written on another
 * connection (autocommit, durable before any handler would start: it is what a crash or a
 * lost connection leaves behind, since the rows themselves roll back); the handlers run;
 * one UPDATE writes each row's claim and outcome together (pending → done) and the same
 * transaction commits; the lease row is deleted. Each claim also reads every live lease
 * (what excluding leased ids from a claim would cost). Claim and outcome are one phase
 * here: the claim columns are reported as 0 and the outcome carries the whole.
 */
async function fusedDrain(
  db: Database,
  claims: ClaimSession,
  start: { p0: number | undefined; c0: Awaited<ReturnType<typeof serverCounters>>; r0: number },
): Promise<Phase> {
  const worker = 'row-cost';
  let after: ClaimCursor | undefined;
  for (let taken = 0, batch = 0; taken < N; batch++) {
    const rows = await claims.transaction('jobsClaim', async (tx) => {
      await db.run('leasesRead', "SELECT l.id FROM bench_leases, JSON_TABLE(ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) l");
      const ready = await jobsSelectReady(tx, 'default', BATCH, after);
      if (ready.length === 0) return ready;
      await db.run('leaseWrite', 'INSERT INTO bench_leases (worker, batch, ids) VALUES (?, ?, ?)', [worker, batch, JSON.stringify(ready.map((r) => r.id))]);
      // No handler runs here: each job "ran" for 0 ms. The daemon's own held close writes them.
      const ranAt = performance.now();
      const changed = await jobsFinishHeld(
        tx,
        worker,
        ready.map((r) => ({ id: r.id, attempts: r.attempts, from: 'queued', status: 'done', started: true, startedAt: ranAt, result: '{"slept":0}' })),
        0,
      );
      if (changed !== ready.length) throw new Error(`row-cost: ${changed} of ${ready.length} rows written under lock`);
      return ready;
    });
    if (rows.length === 0) throw new Error('row-cost: a claim found nothing before every job was taken');
    await db.run('leaseDelete', 'DELETE FROM bench_leases WHERE worker = ? AND batch = ?', [worker, batch]);
    after = nextCursor(rows, BATCH);
    taken += rows.length;
  }
  const r1 = await redoLsn();
  await purged();
  const c1 = await serverCounters();
  const p1 = serverProcessCpuMs();
  await assertAllDone();
  return {
    claimUs: 0,
    finishUs: ((c1.cpuS - start.c0.cpuS) * 1e6) / N,
    claimRedoBytes: 0,
    finishRedoBytes: (r1 - start.r0) / N,
    processUs: processUsPerJob(start.p0, p1),
  };
}

export async function rowCost(): Promise<Result> {
  const passes: Record<string, Phase[]> = {};
  for (let rep = 1; rep <= REPS; rep++) {
    for (const variant of VARIANTS) {
      altersOf(variant);
      progress(`row-cost: ${variant}, rep ${rep}/${REPS}, ${N} jobs in claims of ${BATCH}`);
      (passes[variant] ??= []).push(await onePass(variant));
    }
  }
  const med = (xs: number[]): number | null => {
    const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
    return s.length ? round(s[Math.floor((s.length - 1) / 2)]!, 1) : null;
  };
  const variants = Object.fromEntries(
    Object.entries(passes).map(([name, ps]) => [
      name,
      {
        claim_cpu_us_per_job: med(ps.map((p) => p.claimUs)),
        finish_cpu_us_per_job: med(ps.map((p) => p.finishUs)),
        server_process_cpu_us_per_job: med(ps.flatMap((p) => (p.processUs === undefined ? [] : [p.processUs]))),
        claim_redo_bytes_per_job: med(ps.map((p) => p.claimRedoBytes)),
        finish_redo_bytes_per_job: med(ps.map((p) => p.finishRedoBytes)),
        passes: ps.map((p) => [round(p.claimUs, 1), round(p.finishUs, 1), p.processUs === undefined ? null : round(p.processUs, 1)]),
      },
    ]),
  );
  return {
    scenario: 'row-cost',
    replicas: 0,
    n: N,
    jobs_per_s: null,
    statements_per_job: null,
    idle_statements_per_s: null,
    p50_pickup_ms: null,
    p99_pickup_ms: null,
    peak_rss_mb: null,
    batch: BATCH,
    variants,
  };
}
