// Flat cost at any backlog (migration 004, docs/flat-cost.md): jobs that cannot start now
// — scheduled, paused, cancel requested, behind a busy concurrency key — sit outside lane
// 0 of jobs_claim. Checks what users see (status stays `pending`), that the probe, the quiet
// heartbeat and a claim read the same few index entries whatever the backlog (counted by
// the server: Handler_read_* of the statement's own session), and, with real daemons, that
// scheduled jobs start on time and key lines run one at a time in priority order.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { ClaimSession } from '../../src/db/claim-session.js';
import { Database, type Executor } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { jobsMarkQueued, jobsSelectReady } from '../../src/db/queries/jobs-claim.js';
import { jobsProbe, workersHeartbeatIfQuiet } from '../../src/db/queries/probe.js';
import { workersUpsert } from '../../src/db/queries/workers.js';
import { jobsAdvanceKeyLines, jobsPromoteDue } from '../../src/db/queries/claim-lanes.js';
import { spawnDaemon, testEnv, waitForWorker, type DaemonProcess } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { insertJob, insertJobs, waitFinished } from '../helpers/factory.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;

async function rows(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  return (await pool.query<mysql.RowDataPacket[]>(sql, params))[0];
}

async function lanes(ids: readonly number[]): Promise<Array<[string, number | null]>> {
  const r = await rows('SELECT status, claim_lane FROM jobs WHERE id IN (?) ORDER BY id', [ids]);
  return r.map((x) => [String(x.status), x.claim_lane == null ? null : Number(x.claim_lane)]);
}

/**
 * Index and row reads (Handler_read_*) that `work` costs the server, on one connection of
 * its own: the server's count, not an estimate.
 */
async function reads<T>(work: (x: Executor) => Promise<T>): Promise<{ reads: number; result: T }> {
  const conn = await db.connect();
  try {
    const count = async (): Promise<number> => {
      const [r] = await conn.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Handler_read%'");
      return r.reduce((n, x) => n + Number(x.Value), 0);
    };
    const x: Executor = { run: async <R>(_n: string, sql: string, params: unknown[] = []) => (await conn.query(sql, params))[0] as R };
    const before = await count();
    const result = await work(x);
    return { reads: (await count()) - before, result };
  } finally {
    await conn.end();
  }
}

describe('flat cost: jobs that cannot start now cost nothing while they wait', () => {
  before(async () => {
    fresh = await freshDatabase('flat_cost');
    pool = fresh.pool;
    db = new Database({ url: fresh.url, connectionLimit: 4 });
    await migrate(db);
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
  });

  it('users see `pending`; the lane follows run_at, paused and cancel requests on every write', async () => {
    const [due, later, paused] = await insertJobs(pool, [{ queue: 'lanes' }, { queue: 'lanes', runAtOffsetMs: 3_600_000 }, { queue: 'lanes', paused: true }]);
    const ids = [due!, later!, paused!];
    assert.deepEqual(await lanes(ids), [['pending', 0], ['pending', 1], ['pending', 3]]);
    await pool.query('UPDATE jobs SET paused = FALSE WHERE id = ?', [paused]);
    await pool.query('UPDATE jobs SET run_at = NOW(3) - INTERVAL 1 SECOND WHERE id = ?', [later]);
    await pool.query('UPDATE jobs SET run_at = NOW(3) + INTERVAL 1 DAY WHERE id = ?', [due]);
    assert.deepEqual(await lanes(ids), [['pending', 1], ['pending', 0], ['pending', 0]], 'a user edit moves the row at once');
    await pool.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?', [later]);
    await pool.query("UPDATE jobs SET status = 'running' WHERE id = ?", [paused]);
    assert.deepEqual(await lanes(ids), [['pending', 1], ['pending', 3], ['running', null]]);
    await pool.query('DELETE FROM jobs WHERE queue = ?', ['lanes']);
  });

  it('a scheduled job is promoted into lane 0 once due, not before, in one statement', async () => {
    const id = await insertJob(pool, { queue: 'promote', runAtOffsetMs: 400 });
    assert.deepEqual(await lanes([id]), [['pending', 1]]);
    assert.equal(await jobsPromoteDue(db, ['promote'], 1000), 0, 'not yet due');
    await waitFor(async () => (await jobsPromoteDue(db, ['promote'], 1000)) === 1, { message: 'promoted once due' });
    assert.deepEqual(await lanes([id]), [['pending', 0]]);
    const [row] = await rows('SELECT run_at <= updated_at AS ok, run_at <= NOW(3) AS due FROM jobs WHERE id = ?', [id]);
    assert.deepEqual([Number(row?.ok), Number(row?.due)], [1, 1]);
    await pool.query('DELETE FROM jobs WHERE queue = ?', ['promote']);
  });

  it('the probe, the quiet heartbeat and a claim read as much with 30,000 waiting jobs as with none', async () => {
    await pool.query("INSERT INTO job_queues (name) VALUES ('flat'), ('other')");
    await workersUpsert(db, { id: 'w-flat', host: 'h', pid: 1, version: 't', queues: '*' });
    const claims = new ClaimSession(db);
    try {
      const look = async (): Promise<{ probe: number; quiet: number; claim: number; quietResult: boolean; claimed: number }> => {
        const probe = await reads((x) => jobsProbe(x, { queues: [], deadAfterMs: 30_000, known: ['flat', 'other'] }));
        const quiet = await reads((x) => workersHeartbeatIfQuiet(x, { worker: 'w-flat', queues: [], known: ['flat', 'other'] }));
        const claim = await reads((x) => jobsSelectReady(x, 'flat', 100));
        return { probe: probe.reads, quiet: quiet.reads, claim: claim.reads, quietResult: quiet.result, claimed: claim.result.length };
      };
      const empty = await look();
      assert.equal(empty.quietResult, true, 'all quiet on an empty table');

      // 10,000 scheduled for tomorrow, 10,000 paused, 10,000 behind a busy key (parked).
      await pool.query(
        `INSERT INTO jobs (queue, type, payload, priority, run_at, paused, concurrency_key)
         SELECT 'flat', 'sleep', '{"ms":0}', seq % 5, NOW(3) + INTERVAL IF(seq <= 10000, 1, 0) DAY, seq BETWEEN 10001 AND 20000,
                IF(seq > 20000, 'busy', NULL)
         FROM seq_1_to_30000`,
      );
      const [holder] = await insertJobs(pool, [{ queue: 'other', concurrencyKey: 'busy' }]);
      await pool.query("UPDATE jobs SET status = 'running', worker = 'w-flat' WHERE id = ?", [holder]);
      // A claim parks what it finds behind the busy key, a batch at a time.
      let parked = 0;
      for (let i = 0; i < 20; i++) {
        const n = await claims.transaction('park', async (tx) => {
          const got = await jobsSelectReady(tx, 'flat', 1000);
          if (got.length === 0) return 0;
          assert.ok(got.every((r) => r.blocked !== 0), 'every row found is behind the busy key');
          const next = got.filter((r) => r.blocked === 1).slice(0, 1).map((r) => r.id);
          await jobsMarkQueued(tx, 'w-flat', [], { next, parked: got.map((r) => r.id).filter((id) => !next.includes(id)) });
          return got.length;
        });
        parked += n;
        if (n === 0) break;
      }
      assert.equal(parked, 10_000);
      const [line] = await rows("SELECT key_wait, COUNT(*) AS n FROM jobs WHERE concurrency_key = 'busy' AND status = 'pending' GROUP BY key_wait ORDER BY key_wait");
      assert.deepEqual([Number(line?.key_wait), Number(line?.n)], [1, 9_999], 'parked behind one next');
      await pool.query('ANALYZE TABLE jobs');

      const backlog = await look();
      assert.equal(backlog.quietResult, true, 'all quiet: nothing can start');
      assert.equal(backlog.claimed, 0);
      for (const k of ['probe', 'quiet', 'claim'] as const) {
        assert.ok(backlog[k] <= 2 * empty[k] + 20, `${k}: ${backlog[k]} reads with the backlog, ${empty[k]} without`);
      }
      // The statuses users see did not change.
      const [statuses] = await rows("SELECT COUNT(*) AS n FROM jobs WHERE queue = 'flat' AND status = 'pending'");
      assert.equal(Number(statuses?.n), 30_000);

      // The key frees: its next (the best of the line) goes, and the line moves on.
      await pool.query("UPDATE jobs SET status = 'done', finished_at = NOW(3), worker = NULL WHERE id = ?", [holder]);
      const taken = await claims.transaction('take', async (tx) => {
        const got = await jobsSelectReady(tx, 'flat', 10);
        assert.equal(got.length, 1, 'only the next of the line');
        assert.equal(got[0]?.nextInLine, true);
        await jobsMarkQueued(tx, 'w-flat', [got[0].id]);
        assert.equal(await jobsAdvanceKeyLines(tx, [{ key: 'busy', queue: 'flat' }]), 1);
        return got[0];
      });
      const [best] = await rows("SELECT MIN(priority) AS p FROM jobs WHERE concurrency_key = 'busy' AND queue = 'flat'");
      assert.equal(taken.priority, Number(best?.p), 'the line goes in priority order');
      const [next] = await rows("SELECT COUNT(*) AS n FROM jobs WHERE concurrency_key = 'busy' AND key_wait = 2 AND status = 'pending'");
      assert.equal(Number(next?.n), 1, 'a new next');
    } finally {
      await claims.end();
    }
    await pool.query("DELETE FROM jobs WHERE queue IN ('flat', 'other')");
  });

  it('a line whose next is paused gets a new next from the repair; the probe asks for it', async () => {
    const ids = await insertJobs(pool, Array.from({ length: 3 }, () => ({ queue: 'repair', concurrencyKey: 'r' })));
    await pool.query('UPDATE jobs SET key_wait = IF(id = ?, 2, 1) WHERE id IN (?)', [ids[0], ids]);
    assert.equal((await jobsProbe(db, { queues: ['repair'], deadAfterMs: 30_000 })).keyLinesOpen, false);
    await pool.query('UPDATE jobs SET paused = TRUE WHERE id = ?', [ids[0]]);
    assert.equal((await jobsProbe(db, { queues: ['repair'], deadAfterMs: 30_000 })).keyLinesOpen, true);
    assert.equal(await jobsAdvanceKeyLines(db, undefined), 1);
    assert.deepEqual((await rows('SELECT key_wait FROM jobs WHERE id IN (?) ORDER BY id', [ids])).map((r) => r.key_wait), [2, 2, 1]);
    assert.equal((await jobsProbe(db, { queues: ['repair'], deadAfterMs: 30_000 })).keyLinesOpen, false);
    await pool.query('DELETE FROM jobs WHERE queue = ?', ['repair']);
  });
});

describe('flat cost with real daemons', () => {
  let replicas: DaemonProcess[] = [];
  let live: FreshDatabase;
  before(async () => {
    live = await freshDatabase('flat_cost_live');
    replicas = ['f1', 'f2'].map((id) =>
      spawnDaemon(testEnv(live.url, { SLUICE_WORKER_ID: id, SLUICE_POLL_MS: '1000', SLUICE_CONCURRENCY: '4', SLUICE_HEARTBEAT_MS: '500', SLUICE_DEAD_AFTER_MS: '5000' })),
    );
    for (const id of ['f1', 'f2']) await waitForWorker(live.pool, id);
  });
  after(async () => {
    for (const r of replicas) r.proc.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
    await live?.drop();
  });

  it('a scheduled job starts at its time, not before and within one poll after, with a backlog scheduled for tomorrow', async () => {
    await live.pool.query(
      `INSERT INTO jobs (type, payload, run_at) SELECT 'sleep', '{"ms":0}', NOW(3) + INTERVAL 1 DAY FROM seq_1_to_5000`,
    );
    const ids = await insertJobs(live.pool, [{ runAtOffsetMs: 1500 }, { runAtOffsetMs: 2700 }]);
    for (const id of ids) {
      const job = await waitFinished(live.pool, id, 15_000);
      assert.equal(job.status, 'done');
      const [t] = (await live.pool.query<mysql.RowDataPacket[]>('SELECT TIMESTAMPDIFF(MICROSECOND, run_at, started_at) / 1000 AS ms FROM jobs WHERE id = ?', [id]))[0];
      const late = Number(t?.ms);
      assert.ok(late >= 0, `not before run_at (${late} ms)`);
      assert.ok(late < 1000, `within one poll (1,000 ms) of run_at: ${late} ms`);
    }
    const [left] = (await live.pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM jobs WHERE status = 'pending' AND claim_lane = 1"))[0];
    assert.equal(Number(left?.n), 5000, "tomorrow's jobs wait where they were");
  });

  it('jobs behind a busy key run one at a time, in priority order, once the key frees', async () => {
    const [holder] = await insertJobs(live.pool, [{ type: 'sleep', payload: { ms: null }, concurrencyKey: 'line', timeoutMs: 60_000 }]);
    await waitFor(async () => (await live.pool.query<mysql.RowDataPacket[]>("SELECT 1 FROM jobs WHERE id = ? AND status = 'running'", [holder]))[0].length === 1, {
      message: 'the holder runs',
    });
    const chain = await insertJobs(
      live.pool,
      Array.from({ length: 30 }, (_, i) => ({ type: 'sleep', payload: { ms: 5 }, concurrencyKey: 'line', priority: i % 3 })),
    );
    await waitFor(
      async () => {
        const [r] = (await live.pool.query<mysql.RowDataPacket[]>('SELECT SUM(key_wait = 2) AS next, SUM(key_wait = 1) AS parked FROM jobs WHERE id IN (?)', [chain]))[0];
        return Number(r?.next) === 1 && Number(r?.parked) === 29;
      },
      { message: 'the line is parked behind one next' },
    );
    await live.pool.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?', [holder]);
    for (const id of chain) assert.equal((await waitFinished(live.pool, id, 20_000)).status, 'done');
    const runs = (await live.pool.query<mysql.RowDataPacket[]>('SELECT id, priority, started_at, finished_at FROM jobs WHERE id IN (?) ORDER BY started_at, id', [chain]))[0];
    for (let i = 1; i < runs.length; i++) {
      assert.ok(String(runs[i]!.started_at) >= String(runs[i - 1]!.finished_at), `one at a time: ${JSON.stringify(runs.slice(i - 1, i + 1))}`);
    }
    const priorities = runs.map((r) => Number(r.priority));
    assert.deepEqual(priorities, [...priorities].sort((a, b) => a - b), 'in priority order');
  });
});
