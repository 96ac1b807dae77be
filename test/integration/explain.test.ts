import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import type { Executor } from '../../src/db/database.js';
import { CONNECTION_COLLATION, Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { jobsSelectReady } from '../../src/db/queries/jobs-claim.js';
import { jobsCancelPending, jobsHeldChanges } from '../../src/db/queries/jobs-control.js';
import { jobsSelectHeldBy, jobsSelectOrphanWorkers, jobsSelectOverdue } from '../../src/db/queries/jobs-rescue.js';
import { jobsProbe, workersHeartbeatIfQuiet } from '../../src/db/queries/probe.js';
import { queuesLockActive } from '../../src/db/queries/queues.js';
import { jobsSelectExpired } from '../../src/db/queries/retention.js';
import { workersHeartbeat } from '../../src/db/queries/workers.js';
import { jobsAdvanceKeyLines, jobsPromoteDue } from '../../src/db/queries/claim-lanes.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;

/** jobs_claim's first two parts, VARCHAR(16) + VARCHAR(64) in utf8mb4: (4 × n + 2) bytes each. */
const STATUS_QUEUE_KEY_LEN = 4 * 16 + 2 + (4 * 64 + 2);

/** jobs_claim's third part, claim_lane: a nullable TINYINT. */
const LANE_KEY_LEN = 2;

type Plan = Array<{ select_type: string; table: string; type: string; key: string | null; key_len: string | null; ref: string | null; Extra: string; rows: number }>;

/**
 * Runs a query function against EXPLAIN instead of executing it, collecting each plan.
 * Through the daemon's own pool, so the plans are made under its connection collation.
 */
function explaining(plans: Plan[]): Executor {
  return {
    run: async <T>(_name: string, sql: string, params: unknown[] = []): Promise<T> => {
      if (/^\s*\(?\s*(SELECT|UPDATE|DELETE)/i.test(sql)) {
        const [plan] = await db.pool.query<mysql.RowDataPacket[]>(`EXPLAIN ${sql}`, params);
        plans.push(plan as unknown as Plan);
      }
      return [] as unknown as T;
    },
  };
}

/**
 * No full scan of jobs (type ALL), no filesort, no temporary table. job_queues (aliases q
 * and k) is read whole on purpose: one small row per queue.
 */
function assertIndexed(plan: Plan, what: string): void {
  for (const step of plan) {
    if (!/^(jobs|j|h|a|c|w|o|n|jh|js|x|d|p)$/.test(step.table)) continue;
    assert.notEqual(step.type, 'ALL', `${what}: full scan of ${step.table}: ${JSON.stringify(step)}`);
    assert.doesNotMatch(step.Extra ?? '', /filesort/i, `${what}: ${JSON.stringify(step)}`);
    if (!distinctOfOneQueue(step)) assert.doesNotMatch(step.Extra ?? '', /temporary/i, `${what}: ${JSON.stringify(step)}`);
  }
}

/**
 * The probes' `SELECT DISTINCT queue … WHERE status = 'pending' AND queue IN (?)` with a
 * single served queue, before it is registered. queue is utf8mb4_bin, so MariaDB binds it
 * to that one value and de-duplicates through a temporary table of at most one row; the
 * index entries read are the same as without it (measured: same Handler_read_next, same
 * time per query). Recognised by its shape: a derived table read by `ref` on both
 * status and queue. A temporary table anywhere else still fails.
 */
function distinctOfOneQueue(step: Plan[number]): boolean {
  if (step.select_type !== 'DERIVED' || step.key !== 'jobs_claim') return false;
  // The loose index scan (one entry per queue) de-duplicates the served queues the same way.
  if (step.type === 'range' && /Using index for group-by/.test(step.Extra ?? '')) return true;
  return step.type === 'ref' && step.ref === 'const,const' && Number(step.key_len) === STATUS_QUEUE_KEY_LEN;
}

describe('every hot query is index-served on a big table (EXPLAIN)', () => {
  before(async () => {
    fresh = await freshDatabase('explain');
    pool = fresh.pool;
    db = new Database({ url: fresh.url, connectionLimit: 2 });
    await migrate(db);
    // 60k finished, 20k pending over 20 queues (some paused, with keys and priorities).
    await pool.query(
      `INSERT INTO jobs (queue, type, payload, status, priority, finished_at, concurrency_key, paused, attempts)
       SELECT CONCAT('q', seq % 20), 'sleep', '{"ms":0}',
              ELT(1 + seq % 4, 'done', 'failed', 'cancelled', 'done'), CAST(seq % 7 AS SIGNED) - 3,
              NOW(3) - INTERVAL seq SECOND, IF(seq % 5 = 0, CONCAT('k', seq % 50), NULL), seq % 11 = 0, 1
       FROM seq_1_to_60000`,
    );
    await pool.query(
      `INSERT INTO jobs (queue, type, payload, priority, run_at, concurrency_key, paused)
       SELECT CONCAT('q', seq % 20), 'sleep', '{"ms":0}', CAST(seq % 7 AS SIGNED) - 3, NOW(3) - INTERVAL (seq % 100) SECOND,
              IF(seq % 5 = 0, CONCAT('k', seq % 50), NULL), seq % 13 = 0
       FROM seq_1_to_20000`,
    );
    // 20k scheduled for later; part of the keyed pending rows parked in their key lines.
    await pool.query(
      `INSERT INTO jobs (queue, type, payload, priority, run_at, concurrency_key)
       SELECT CONCAT('q', seq % 20), 'sleep', '{"ms":0}', CAST(seq % 7 AS SIGNED) - 3, NOW(3) + INTERVAL seq SECOND,
              IF(seq % 4 = 0, CONCAT('k', seq % 50), NULL)
       FROM seq_1_to_20000`,
    );
    await pool.query(
      `UPDATE jobs SET key_wait = IF(id % 7 = 0, 2, 1)
       WHERE status = 'pending' AND concurrency_key IS NOT NULL AND claim_lane = 0 AND id % 2 = 0`,
    );
    await pool.query("INSERT INTO job_queues (name, paused, concurrency) SELECT CONCAT('q', seq), seq % 3 = 0, IF(seq % 2 = 0, 5, NULL) FROM seq_0_to_19");
    await pool.query('ANALYZE TABLE jobs');
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
  });

  it('the claim uses jobs_claim in ORDER BY order: no filesort, no full scan', async () => {
    const plans: Plan[] = [];
    await jobsSelectReady(explaining(plans), 'q3', 1000);
    const main = plans[0]!.find((s) => s.table === 'jobs')!;
    assert.equal(main.key, 'jobs_claim', JSON.stringify(plans[0]));
    // Seeks on status (utf8mb4_unicode_ci), queue (utf8mb4_bin) and lane 0 with the
    // parameters as given: a collation the index cannot serve would leave queue out
    // (key_len 66, ref const) and sort the rest. Lane 0 holds only jobs that can start
    // now: scheduled, paused and parked rows are never read.
    assert.equal(main.type, 'ref', JSON.stringify(main));
    assert.equal(main.ref, 'const,const,const', JSON.stringify(main));
    assert.equal(Number(main.key_len), STATUS_QUEUE_KEY_LEN + LANE_KEY_LEN, JSON.stringify(main));
    assertIndexed(plans[0]!, 'claim');
    const keyCheck = plans[0]!.find((s) => s.table === 'h');
    assert.equal(keyCheck?.key, 'jobs_active_concurrency_key', 'the concurrency-key check is an index lookup');
  });

  it('a claim that starts after the previous one seeks into jobs_claim instead of walking from the head', async () => {
    const plans: Plan[] = [];
    await jobsSelectReady(explaining(plans), 'q3', 1000, { priority: -1, runAt: '2026-01-01 00:00:00.000', id: 12345 });
    const main = plans[0]!.find((s) => s.table === 'jobs')!;
    assert.equal(main.key, 'jobs_claim', JSON.stringify(plans[0]));
    assert.equal(main.type, 'range', 'a range seek past the cursor, not a ref scan from the head');
    assertIndexed(plans[0]!, 'cursor claim');
  });

  it('the idle probe and the quiet heartbeat read only indexes, the leader checks too', async () => {
    const plans: Plan[] = [];
    const leader = { worker: 'w', deadAfterMs: 30_000, defaultTimeoutMs: 900_000, graceMs: 30_000 };
    await jobsProbe(explaining(plans), { queues: [], deadAfterMs: 30_000 });
    await jobsProbe(explaining(plans), { queues: ['q1', 'q2'], deadAfterMs: 30_000, leader });
    await workersHeartbeatIfQuiet(explaining(plans), { worker: 'w', queues: [], leader });
    await workersHeartbeatIfQuiet(explaining(plans), { worker: 'w', queues: ['q1'] });
    assert.equal(plans.length, 4);
    for (const plan of plans) assertIndexed(plan, 'probe');
  });

  it('once queues are registered, the probe reads no pending entries of theirs to find new ones', async () => {
    const known = Array.from({ length: 20 }, (_, i) => `q${i}`);
    const plans: Plan[] = [];
    await jobsProbe(explaining(plans), { queues: [], deadAfterMs: 30_000, known });
    await workersHeartbeatIfQuiet(explaining(plans), { worker: 'w', queues: [], known });
    for (const plan of plans) {
      assertIndexed(plan, 'probe');
      const scan = plan.find((s) => (s.table === 'j' || s.table === 'n') && s.key === 'jobs_claim' && s.type === 'range' && s.rows < 100);
      assert.ok(scan, `new-queue discovery is a narrow range that skips the known queues: ${JSON.stringify(plan)}`);
    }
  });

  it("a replica's first probe finds the queues with pending jobs by a loose index scan, not by reading the backlog", async () => {
    // No queue known yet (a replica that just started): one dive per queue of jobs_claim.
    const plans: Plan[] = [];
    await jobsProbe(explaining(plans), { queues: [], deadAfterMs: 30_000 });
    await jobsProbe(explaining(plans), { queues: ['q1', 'q2'], deadAfterMs: 30_000 });
    await workersHeartbeatIfQuiet(explaining(plans), { worker: 'w', queues: [] });
    for (const plan of plans) {
      const discovery = plan.find((s) => s.select_type === 'DERIVED' && s.key === 'jobs_claim');
      assert.match(discovery?.Extra ?? '', /Using index for group-by/, `loose index scan: ${JSON.stringify(plan)}`);
    }
  });

  it('queue caps, held-job checks, pending cancels and retention are index-served', async () => {
    const plans: Plan[] = [];
    const x = explaining(plans);
    await queuesLockActive(x, ['q1', 'q2']);
    await jobsHeldChanges(x, 'w', [{ id: 5, attempts: 0 }, { id: 6, attempts: 1 }]);
    await jobsCancelPending(x, 1000);
    await jobsSelectExpired(x, { hours: 168, limit: 500 });
    await jobsSelectOrphanWorkers(x, 30_000);
    for (const plan of plans) assertIndexed(plan, 'sweep');
    const cancel = plans[3]!.find((s) => s.table === 'jobs');
    assert.equal(cancel?.key, 'jobs_cancel_pending');
    const expired = plans[4]!.find((s) => s.table === 'jobs');
    assert.equal(expired?.key, 'jobs_finished');
    // Orphan rescue reads only the queued and running entries of the claim index.
    const orphans = plans[5]!.find((s) => s.table === 'j');
    assert.equal(orphans?.key, 'jobs_claim');
    assert.equal(orphans?.type, 'range');
  });

  it('sweeps go batch by batch from where the last stopped, reading only the rows they may change', async () => {
    const plans: Plan[] = [];
    const x = explaining(plans);
    await jobsSelectExpired(x, { hours: 168, limit: 500, after: { finishedAt: '2026-01-01 00:00:00.000', id: 12345 } });
    await jobsSelectHeldBy(x, { workers: ['w1', 'w2'], afterId: 12345, limit: 1000 });
    await jobsSelectOverdue(x, { defaultTimeoutMs: 900_000, graceMs: 30_000, afterId: 12345, limit: 1000 });
    assertIndexed(plans[0]!, 'retention cursor');
    const expired = plans[0]!.find((s) => s.table === 'jobs')!;
    assert.equal(expired.key, 'jobs_finished', JSON.stringify(plans[0]));
    assert.equal(expired.type, 'range', JSON.stringify(expired));
    assert.equal(Number(expired.key_len), 8 + 8, `seeks (finished_at, id) past the cursor: ${JSON.stringify(expired)}`);
    // The rescue's reads walk the queued and running entries of jobs_claim — what the
    // replicas hold, bounded by their claims and concurrency — and sort those by id; never
    // the primary key from the cursor on, through the whole table.
    for (const plan of plans.slice(1)) {
      const step = plan.find((s) => s.table === 'jobs' || s.table === 'j')!;
      assert.equal(step.key, 'jobs_claim', JSON.stringify(plan));
      assert.match(step.type, /^(ref|range)$/, `a seek on status: ${JSON.stringify(step)}`);
    }
  });

  it('the connection collation keeps identifier parameters on the indexes of their _bin columns', async () => {
    const [[conn]] = (await db.pool.query('SELECT @@collation_connection AS c')) as unknown as [[{ c: string }]];
    assert.equal(conn.c, CONNECTION_COLLATION, 'the daemon connects in the collation it was written for');
    const [cols] = await pool.query<mysql.RowDataPacket[]>(
      `SELECT CONCAT(table_name, '.', column_name) AS c, collation_name AS k FROM information_schema.columns
       WHERE table_schema = DATABASE() AND column_name IN ('queue', 'type', 'worker', 'concurrency_key', 'unique_key',
         'active_concurrency_key', 'active_unique_key', 'name', 'id', 'queues', 'status')
         AND table_name IN ('jobs', 'job_queues', 'job_workers') AND collation_name IS NOT NULL`,
    );
    const collations = Object.fromEntries(cols.map((r) => [String(r.c), String(r.k)]));
    assert.equal(collations['jobs.status'], CONNECTION_COLLATION);
    assert.equal(collations['jobs.queue'], 'utf8mb4_bin');
    const plans: Plan[] = [];
    const x = explaining(plans);
    await workersHeartbeat(x, 'Worker-1');
    const beat = plans[0]!.find((s) => s.table === 'job_workers')!;
    assert.equal(beat.key, 'PRIMARY', `job_workers.id = ? is a key lookup: ${JSON.stringify(beat)}`);
    assert.notEqual(beat.type, 'ALL');
  });

  it('promotion of due scheduled jobs reads only lane 1 of the queues, in run_at order', async () => {
    const plans: Plan[] = [];
    await jobsPromoteDue(explaining(plans), ['q1', 'q2'], 1000);
    const step = plans[0]!.find((s) => s.table === 'jobs')!;
    assertIndexed(plans[0]!, 'promote');
    assert.equal(step.key, 'jobs_claim', JSON.stringify(plans[0]));
    assert.equal(step.type, 'range', JSON.stringify(step));
  });

  it('the probe reads one entry per queue for "next scheduled job" and one per key line for repairs', async () => {
    const plans: Plan[] = [];
    await jobsProbe(explaining(plans), { queues: [], deadAfterMs: 30_000 });
    // The first entry of each queue's lane 1, in index order: a LIMIT 1 on a ref without
    // a sort (MIN() of a queue named by the outer row would read the whole lane).
    const first = plans[0]!.find((s) => s.table === 'js');
    assert.equal(first?.key, 'jobs_claim', JSON.stringify(plans[0]));
    assert.equal(first?.ref?.split(',').length, 4, `seeks (status, queue, lane, NULL priority): ${JSON.stringify(first)}`);
    const lines = plans[0]!.find((s) => s.table === 'jobs' && s.key === 'jobs_key_waits');
    assert.ok(lines, `the key-line check reads jobs_key_waits: ${JSON.stringify(plans[0])}`);
    assert.match(lines.Extra, /Using index for group-by/, `a loose scan, one read per line: ${JSON.stringify(lines)}`);
  });

  it('moving a key line on reads its line, not its parked rows', async () => {
    const plans: Plan[] = [];
    const x = explaining(plans);
    await jobsAdvanceKeyLines(x, [{ key: 'k1', queue: 'q1' }, { key: 'k2', queue: 'q2' }]);
    await jobsAdvanceKeyLines(x, undefined);
    assert.equal(plans.length, 2);
    for (const [i, plan] of plans.entries()) {
      assertIndexed(plan, 'advance');
      if (i === 0) {
        // Named lines: one dive for the next, one for "has a next", per line.
        const has = plan.filter((s) => s.table === 'd');
        assert.equal(has.length, 2, JSON.stringify(plan));
        for (const step of has) assert.equal(step.key, 'jobs_key_waits', JSON.stringify(step));
      } else {
        const group = plan.find((s) => s.table === 'jobs');
        assert.equal(group?.key, 'jobs_key_waits', JSON.stringify(plan));
        assert.match(group?.Extra ?? '', /Using index for group-by/, JSON.stringify(plan));
      }
      const head = plan.find((s) => s.table === 'x');
      assert.equal(head?.key, 'jobs_key_waits', JSON.stringify(plan));
      assert.equal(head?.type, 'ref', `the next is the first entry of its line: ${JSON.stringify(head)}`);
      const target = plan.find((s) => s.table === 'p');
      assert.equal(target?.key, 'PRIMARY', JSON.stringify(plan));
    }
  });

  it("the SQL cookbook's per-queue counts of startable jobs read lane 0 of jobs_claim only", async () => {
    for (const sql of [
      "SELECT queue, COUNT(*) AS startable FROM jobs WHERE status = 'pending' AND queue IN ('q1', 'q2') AND claim_lane = 0 GROUP BY queue",
      "SELECT TIMESTAMPDIFF(SECOND, MIN(run_at), NOW(3)) FROM jobs WHERE status = 'pending' AND queue = 'q1' AND claim_lane = 0",
    ]) {
      const [plan] = await pool.query<mysql.RowDataPacket[]>(`EXPLAIN ${sql}`);
      const step = (plan as unknown as Plan).find((s) => s.table === 'jobs')!;
      assert.equal(step.key, 'jobs_claim', JSON.stringify(plan));
      assert.equal(Number(step.key_len), STATUS_QUEUE_KEY_LEN + LANE_KEY_LEN, `(status, queue, lane) bound: ${JSON.stringify(step)}`);
      assert.match(step.Extra, /Using index/);
      assertIndexed(plan as unknown as Plan, sql);
    }
  });

  it('job_stats reads the covering index, without filesort or temporary table', async () => {
    const [plan] = await pool.query<mysql.RowDataPacket[]>('EXPLAIN SELECT * FROM job_stats');
    const jobs = (plan as unknown as Plan).find((s) => s.table === 'jobs')!;
    assert.equal(jobs.key, 'jobs_claim');
    assert.match(jobs.Extra, /Using index/);
    assert.doesNotMatch(jobs.Extra, /filesort|temporary/);
  });
});
