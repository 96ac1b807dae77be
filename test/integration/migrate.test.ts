import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { MIGRATIONS_DIR, migrate, migrationFiles, migrationsDone } from '../../src/db/migrate.js';
import { jobsListRange, statusQueueRanges } from '../../src/db/queries/dashboard-jobs.js';
import { jobsMarkQueued } from '../../src/db/queries/jobs-claim.js';
import { jobsFinish } from '../../src/db/queries/jobs-outcome.js';
import { jobsMarkRunning } from '../../src/db/queries/jobs-run.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;

async function tables(): Promise<string[]> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>(
    'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name',
  );
  return rows.map((r) => String(r.t)).sort();
}

describe('migrations', () => {
  before(async () => {
    fresh = await freshDatabase('migrate');
    pool = fresh.pool;
  });
  after(async () => fresh?.drop());

  it('replicas starting together apply each migration once, under the lock', async () => {
    const dbs = Array.from({ length: 4 }, () => new Database({ url: fresh.url, connectionLimit: 1 }));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db)));
      const applied = results.flatMap((r) => r.applied);
      const files = await migrationFiles();
      assert.deepEqual(applied, files, 'exactly one process applied each file, in order');
      assert.ok(results.every((r) => r.current === Number(files.at(-1)!.split('_')[0])));
      assert.equal(await migrationsDone(dbs[0]!), true);
    } finally {
      await Promise.all(dbs.map((db) => db.end()));
    }
    for (const t of ['job_leases', 'job_queues', 'job_schedules', 'job_stats', 'job_workers', 'jobs', 'sluice_migrations']) assert.ok((await tables()).includes(t), `${t} missing`);
    const [[row]] = (await pool.query('SELECT COUNT(*) n FROM sluice_migrations')) as unknown as [[{ n: number }]];
    assert.equal(Number(row.n), (await migrationFiles()).length);
  });

  it('is idempotent: running it again applies nothing and keeps the data', async () => {
    await pool.query("INSERT INTO jobs (type) VALUES ('sleep')");
    const db = new Database({ url: fresh.url, connectionLimit: 1 });
    try {
      assert.deepEqual((await migrate(db)).applied, []);
    } finally {
      await db.end();
    }
    const [[row]] = (await pool.query('SELECT COUNT(*) n FROM jobs')) as unknown as [[{ n: number }]];
    assert.equal(Number(row.n), 1);
  });

  it('with every migration applied, a start takes no lock: it does not wait for another migrator', async () => {
    const holder = await pool.getConnection();
    const db = new Database({ url: fresh.url, connectionLimit: 1 });
    try {
      const [[got]] = (await holder.query('SELECT GET_LOCK(?, 0) AS got', [`sluice:migrate:${db.databaseName}`])) as unknown as [[{ got: number }]];
      assert.equal(Number(got.got), 1, 'the migration lock is held elsewhere');
      // Under the lock this would wait up to 60 s: settling first, it took none.
      const outcome = await Promise.race([migrate(db), new Promise<string>((r) => setTimeout(() => r('waited'), 10_000).unref())]);
      assert.notEqual(outcome, 'waited');
      assert.deepEqual((outcome as { applied: string[] }).applied, []);
    } finally {
      await holder.query('SELECT RELEASE_LOCK(?)', [`sluice:migrate:${db.databaseName}`]);
      holder.release();
      await db.end();
    }
  });

  it('003_schedules re-runs cleanly after a process died before recording it', async () => {
    await pool.query("DELETE FROM sluice_migrations WHERE name = '003_schedules.sql'");
    const db = new Database({ url: fresh.url, connectionLimit: 1 });
    try {
      assert.deepEqual((await migrate(db)).applied, ['003_schedules.sql']);
    } finally {
      await db.end();
    }
    const [keys] = await pool.query<mysql.RowDataPacket[]>("SHOW INDEX FROM jobs WHERE Key_name = 'jobs_schedule_tick'");
    assert.deepEqual(keys.map((k) => [k.Column_name, Number(k.Non_unique)]), [['schedule_id', 0], ['scheduled_for', 0]]);
  });

  it('creates the contract columns with their defaults', async () => {
    const [cols] = await pool.query<mysql.RowDataPacket[]>(
      "SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs'",
    );
    const names = new Set(cols.map((r) => String(r.c)));
    for (const c of [
      'id', 'queue', 'type', 'payload', 'status', 'priority', 'run_at', 'attempts', 'max_attempts', 'timeout_ms',
      'concurrency_key', 'unique_key', 'paused', 'cancel_requested_at', 'progress', 'result', 'error', 'worker',
      'created_at', 'queued_at', 'started_at', 'finished_at', 'cancelled_at', 'updated_at',
    ]) {
      assert.ok(names.has(c), `jobs.${c} missing`);
    }
    const [[job]] = (await pool.query("SELECT queue, status, priority, attempts, max_attempts, paused, run_at <= NOW(3) AS due FROM jobs LIMIT 1")) as unknown as [
      [Record<string, unknown>],
    ];
    assert.deepEqual({ ...job, due: Number(job.due) }, { queue: 'default', status: 'pending', priority: 0, attempts: 0, max_attempts: 3, paused: 0, due: 1 });
    await assert.rejects(pool.query("INSERT INTO jobs (type, status) VALUES ('x', 'bogus')"), /constraint|CONSTRAINT/i, 'status is checked');
  });

  it('`node dist/main.js migrate` applies and exits 0; a daemon with SLUICE_MIGRATE=false waits for it', async () => {
    const other = await freshDatabase('migrate_cli');
    try {
      const cli = spawnDaemon({ DATABASE_URL: other.url }, ['migrate']);
      assert.equal(await cli.exited, 0, cli.output());
      assert.ok(cli.output().includes(`"applied":${JSON.stringify(await migrationFiles())}`), cli.output());
      const again = spawnDaemon({ DATABASE_URL: other.url }, ['migrate']);
      assert.equal(await again.exited, 0);
      assert.match(again.output(), /"applied":\[\]/);
    } finally {
      await other.drop();
    }
  });

  it('002 turns the identifiers into utf8mb4_bin on a schema-001 database with data: every row, value and index kept', async () => {
    const old = await freshDatabase('migrate_001_data');
    const only001 = await mkdtemp(join(tmpdir(), 'sluice-001-'));
    const db = new Database({ url: old.url, connectionLimit: 1 });
    const q = async (sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> => (await old.pool.query<mysql.RowDataPacket[]>(sql, params))[0];
    try {
      await copyFile(join(MIGRATIONS_DIR, '001_init.sql'), join(only001, '001_init.sql'));
      assert.deepEqual((await migrate(db, only001)).applied, ['001_init.sql']);
      await seedSchema001(old.pool);
      const before = await snapshot(q);
      assert.equal(before.jobs.length, 7);

      // From the previous schema to this one: later migrations have tests of their own.
      await copyFile(join(MIGRATIONS_DIR, '002_exact_identifiers.sql'), join(only001, '002_exact_identifiers.sql'));
      assert.deepEqual((await migrate(db, only001)).applied, ['002_exact_identifiers.sql']);
      assert.deepEqual(await snapshot(q), before, 'every row and value, and every index, as before');
      const collations = await q(
        `SELECT CONCAT(table_name, '.', column_name) AS c FROM information_schema.columns
         WHERE table_schema = DATABASE() AND collation_name = 'utf8mb4_bin' AND data_type = 'varchar'`,
      );
      assert.deepEqual(
        collations.map((r) => String(r.c)).sort(),
        [
          'job_queues.name', 'job_stats.queue', 'job_workers.id', 'job_workers.queues', 'jobs.active_concurrency_key', 'jobs.active_unique_key',
          'jobs.concurrency_key', 'jobs.queue', 'jobs.type', 'jobs.unique_key', 'jobs.worker',
        ],
      );
      const [status] = await q("SELECT collation_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' AND column_name = 'status'");
      assert.equal(status?.c, 'utf8mb4_unicode_ci', 'other text columns keep the table collation');
      // Under 001 job_stats counted `Emails` and `emails` as one queue; now they are two.
      const stats = await q("SELECT queue, status, jobs FROM job_stats WHERE status = 'pending' ORDER BY queue");
      assert.deepEqual(stats.map((r) => [r.queue, Number(r.jobs)]), [['Emails', 1], ['emails', 1]]);

      // A process that died after 002's statements but before recording it applies it again.
      await q('DELETE FROM sluice_migrations WHERE version = 2');
      assert.deepEqual((await migrate(db, only001)).applied, ['002_exact_identifiers.sql']);
      assert.deepEqual((await migrate(db, only001)).applied, [], 'and then nothing');
      assert.deepEqual(await snapshot(q), before, 'unchanged by the second run');

      // The keys hold as before: an active unique key, an active concurrency key, a queue name.
      const dup = (err: { code?: string }) => err.code === 'ER_DUP_ENTRY';
      await assert.rejects(q("INSERT INTO jobs (type, unique_key) VALUES ('sleep', 'order-😀')"), dup, 'a pending job keeps its unique key');
      await assert.rejects(q("UPDATE jobs SET status = 'running' WHERE queue = 'emails'"), dup, 'the queued job holds res-1: no second holder');
      await assert.rejects(q("INSERT INTO job_queues (name) VALUES ('Emails')"), dup);
      await q("INSERT INTO jobs (type, unique_key) VALUES ('sleep', 'u-done')");
      await q("INSERT INTO jobs (type, unique_key) VALUES ('sleep', 'order-🎉')");
      await q("INSERT INTO job_queues (name) VALUES ('emails')");
    } finally {
      await db.end();
      await old.drop();
      await rm(only001, { recursive: true, force: true });
    }
  });

  it('005 adds workflows to a schema-003 database with data: every row and value kept, waiting allowed, re-runnable', async () => {
    const { old, db, q, drop } = await olderSchema('migrate_003_data', 5);
    try {
      await seedSchema001(old.pool);
      const columns003 = (await q("SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' ORDER BY ordinal_position")).map((r) => String(r.c));
      const rows = async (): Promise<mysql.RowDataPacket[]> => q(`SELECT ${columns003.join(', ')} FROM jobs ORDER BY id`);
      const before = await rows();
      assert.equal(before.length, 7);

      // Later files (006 …) apply in the same run.
      assert.deepEqual((await migrate(db)).applied.filter((f) => f <= '005~'), ['005_workflows.sql']);
      assert.deepEqual(await rows(), before, 'every old column of every row as it was');
      const added = await q(
        `SELECT id, parent_id, deps_total, deps_done, deps_failed, on_child_failure, approval_required, approved_at, approved_by,
                wait_deadline, suspended_at, counted_as, cancel_cascaded_at, pause_cascaded, workflow_todo, wait_expiry
         FROM jobs ORDER BY id`,
      );
      for (const r of added) {
        assert.deepEqual(
          { ...r, id: undefined, workflow_todo: undefined },
          { id: undefined, parent_id: null, deps_total: null, deps_done: 0, deps_failed: 0, on_child_failure: 'fail', approval_required: 0, approved_at: null,
            approved_by: null, wait_deadline: null, suspended_at: null, counted_as: null, cancel_cascaded_at: null, pause_cascaded: 0, workflow_todo: undefined, wait_expiry: null },
        );
      }
      // Plain rows leave the leader nothing to do, a cancel request included: only jobs
      // that can have children (waiting, or sealed) get their cancel or pause pushed down.
      assert.deepEqual(added.map((r) => r.workflow_todo), [null, null, null, null, null, null, null]);

      const indexes = (await q("SELECT DISTINCT index_name AS i FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'jobs'")).map((r) => String(r.i));
      for (const i of ['jobs_parent', 'jobs_workflow_todo', 'jobs_wait_expiry', 'jobs_claim', 'jobs_active_unique_key']) assert.ok(indexes.includes(i), `${i} missing`);
      const [w] = await old.pool.query<mysql.ResultSetHeader>("INSERT INTO jobs (type, status, unique_key) VALUES ('sleep', 'waiting', 'u-wait')");
      assert.ok(w.insertId > 0, 'status waiting is allowed');
      await assert.rejects(q("INSERT INTO jobs (type, unique_key) VALUES ('sleep', 'u-wait')"), (e: { code?: string }) => e.code === 'ER_DUP_ENTRY', 'a waiting job holds its unique key');
      await assert.rejects(q("INSERT INTO jobs (type, status) VALUES ('x', 'bogus')"), /constraint/i);
      await assert.rejects(q("INSERT INTO jobs (type, on_child_failure) VALUES ('x', 'ignore')"), /constraint/i);

      // A process that died after the ALTER (one atomic statement) but before recording it.
      const schema = async () => q("SELECT column_name, column_type, generation_expression FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' ORDER BY ordinal_position");
      const after = await schema();
      await q('DELETE FROM sluice_migrations WHERE version = 5');
      assert.deepEqual((await migrate(db)).applied, ['005_workflows.sql']);
      assert.deepEqual(await schema(), after, 'the second run changes nothing');
      assert.deepEqual(await rows(), [...before, ...(await rows()).slice(7)]);
    } finally {
      await drop();
    }
  });

  it('007 re-keys jobs_list on a schema-006 database with data: every row kept, claimed rows under pending, re-runnable', async () => {
    const { old, db, q, drop } = await olderSchema('migrate_006_data', 7);
    try {
      await seedSchema001(old.pool);
      const keys = async (): Promise<string[]> => (await q('SELECT list_key FROM jobs ORDER BY id')).map((r) => String(r.list_key));
      assert.deepEqual(await keys(), ['pending/Emails', 'pending/emails', 'queued/default', 'running/default', 'done/reports', 'failed/reports', 'cancelled/reports']);
      const columns = (await q("SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' AND column_name <> 'list_key' ORDER BY ordinal_position")).map((r) => String(r.c));
      const rows = async (): Promise<mysql.RowDataPacket[]> => q(`SELECT ${columns.join(', ')} FROM jobs ORDER BY id`);
      const before = await rows();

      const upTo007 = await filesBelow(8);
      assert.deepEqual((await migrate(db, upTo007)).applied, ['007_quiet_list_key.sql']);
      assert.deepEqual(await rows(), before, 'every other column of every row as it was');
      assert.deepEqual(await keys(), ['pending/Emails', 'pending/emails', 'pending/default', 'pending/default', 'done/reports', 'failed/reports', 'cancelled/reports']);
      const index = await q("SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) AS c FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'jobs' AND index_name = 'jobs_list'");
      assert.equal(index[0]?.c, 'list_key,id');
      // The index answers for the re-keyed rows (it was rebuilt, not left stale).
      const viaIndex = await q("SELECT id FROM jobs FORCE INDEX (jobs_list) WHERE list_key = 'pending/default' ORDER BY id");
      assert.equal(viaIndex.length, 2);

      // A process that died after the ALTER but before recording it.
      const schema = async () => q("SELECT column_name, column_type, generation_expression FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' ORDER BY ordinal_position");
      const after = await schema();
      await q('DELETE FROM sluice_migrations WHERE version = 7');
      assert.deepEqual((await migrate(db, upTo007)).applied, ['007_quiet_list_key.sql']);
      await rm(upTo007, { recursive: true, force: true });
      assert.deepEqual(await schema(), after, 'the second run changes nothing');
      assert.deepEqual(await rows(), before);
    } finally {
      await drop();
    }
  });

  it('008 adds job_leases to a schema-007 database with data: every row kept, re-runnable', async () => {
    const { old, db, q, drop } = await olderSchema('migrate_007_data', 8);
    try {
      await seedSchema001(old.pool);
      const before = await snapshot(q);
      const leaseTable = async () => q("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'job_leases'");
      assert.equal((await leaseTable()).length, 0);
      const upTo008 = await filesBelow(9);
      assert.deepEqual((await migrate(db, upTo008)).applied, ['008_job_leases.sql']);
      assert.equal((await leaseTable()).length, 1);
      const after = await snapshot(q);
      assert.deepEqual({ ...after, indexes: after.indexes.filter((i) => (i as { table_name: string }).table_name !== 'job_leases') }, before, 'the other tables as they were');
      const lease = (await q("SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) AS c FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'job_leases' AND index_name = 'PRIMARY'"))[0];
      assert.equal(lease?.c, 'worker,batch');
      await q(`INSERT INTO job_leases (worker, batch, ids) VALUES ('w-1', 1, '[1, 2]')`);
      await assert.rejects(q(`INSERT INTO job_leases (worker, batch, ids) VALUES ('w-1', 2, 'not json')`), /constraint|json/i, 'ids must be JSON');

      // A process that died after the CREATE but before recording it.
      await q('DELETE FROM sluice_migrations WHERE version = 8');
      assert.deepEqual((await migrate(db, upTo008)).applied, ['008_job_leases.sql']);
      await rm(upTo008, { recursive: true, force: true });
      assert.equal((await q('SELECT COUNT(*) AS n FROM job_leases'))[0]?.n, 1, 'the re-run keeps the leases');
    } finally {
      await drop();
    }
  });

  it('009 drops jobs_list and list_key on a schema-008 database with data: every other column and index kept, lists read jobs_claim, re-runnable', async () => {
    const { old, db, q, drop } = await olderSchema('migrate_008_data', 9);
    try {
      await seedSchema001(old.pool);
      const columns = (await q("SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' AND column_name <> 'list_key' ORDER BY ordinal_position")).map((r) => String(r.c));
      const rows = async (): Promise<mysql.RowDataPacket[]> => q(`SELECT ${columns.join(', ')} FROM jobs ORDER BY id`);
      const indexes = async (): Promise<mysql.RowDataPacket[]> => q(JOBS_INDEXES);
      const before = await rows();
      const indexesBefore = await indexes();
      assert.ok(indexesBefore.some((i) => i.index_name === 'jobs_list'));

      const upTo009 = await filesBelow(10);
      assert.deepEqual((await migrate(db, upTo009)).applied, ['009_lists_on_claim_index.sql']);
      assert.deepEqual(await rows(), before, 'every other column of every row as it was');
      assert.deepEqual(await indexes(), indexesBefore.filter((i) => i.index_name !== 'jobs_list'), 'only jobs_list is gone');
      const listKey = await q("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' AND column_name = 'list_key'");
      assert.equal(listKey.length, 0, 'list_key is gone');

      // The lists' ranges find the seeded rows through jobs_claim, each in its own status.
      const listed = async (status: string, queue: string): Promise<number[]> => {
        const { ranges } = await statusQueueRanges(db, status, queue);
        return (await Promise.all(ranges.map((r) => jobsListRange(db, r, undefined, 10)))).flat().map((j) => j.id);
      };
      const ids = before.map((r) => Number(r.id));
      assert.deepEqual(await listed('pending', 'Emails'), [ids[0]]);
      assert.deepEqual(await listed('queued', 'default'), [ids[2]]);
      assert.deepEqual(await listed('running', 'default'), [ids[3]]);
      assert.deepEqual(await listed('failed', 'reports'), [ids[5]]);

      // A process that died after the ALTER but before recording it.
      await q('DELETE FROM sluice_migrations WHERE version = 9');
      assert.deepEqual((await migrate(db, upTo009)).applied, ['009_lists_on_claim_index.sql']);
      await rm(upTo009, { recursive: true, force: true });
      assert.deepEqual(await rows(), before, 'the re-run changes nothing');
    } finally {
      await drop();
    }
  });

  it('010 adds the invisible spare_bytes to a schema-009 database with data: every row and index kept, the writes give the room up, re-runnable', async () => {
    const { old, db, q, drop } = await olderSchema('migrate_009_data', 10);
    try {
      await seedSchema001(old.pool);
      const rows = async (): Promise<mysql.RowDataPacket[]> => q('SELECT * FROM jobs ORDER BY id');
      const indexes = async (): Promise<mysql.RowDataPacket[]> => q(JOBS_INDEXES);
      const before = await rows();
      const indexesBefore = await indexes();

      assert.deepEqual((await migrate(db)).applied, ['010_spare_bytes.sql']);
      assert.deepEqual(await rows(), before, 'SELECT * reads every row as it was, without the new column');
      assert.deepEqual(await indexes(), indexesBefore, 'every index as it was');
      const [column] = await q("SELECT column_type, extra FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'jobs' AND column_name = 'spare_bytes'");
      assert.equal(column?.column_type, 'varbinary(64)');
      assert.match(String(column?.extra), /INVISIBLE/);
      const room = async (id: number): Promise<number | null> => {
        const [r] = await q('SELECT LENGTH(spare_bytes) AS n FROM jobs WHERE id = ?', [id]);
        return r?.n === null || r?.n === undefined ? null : Number(r.n);
      };
      assert.equal(await room(Number(before[0]!.id)), 64, 'a row already there reads the default');

      // A job inserted as users do keeps 64 bytes; its claim, start and outcome give them up.
      await q("INSERT INTO jobs (type, payload) VALUES ('sleep', '{}')");
      const [{ id: rawId } = { id: 0 }] = await q('SELECT MAX(id) AS id FROM jobs');
      const id = Number(rawId);
      assert.equal(await room(id), 64);
      await jobsMarkQueued(db, 'w-room', [id]);
      assert.equal(await room(id), 24, 'claimed');
      assert.equal(await jobsMarkRunning(db, 'w-room', [{ id, attempts: 0 }]), 1);
      assert.equal(await room(id), 16, 'running');
      assert.equal(await jobsFinish(db, { worker: 'w-room', outcomes: [{ id, attempts: 1, from: 'running', status: 'done', result: '{}' }] }), 1);
      assert.equal(await room(id), null, 'done');

      // A process that died after the ALTER but before recording it.
      await q('DELETE FROM sluice_migrations WHERE version = 10');
      assert.deepEqual((await migrate(db)).applied, ['010_spare_bytes.sql']);
      assert.equal(await room(id), null, 'the re-run changes nothing');
    } finally {
      await drop();
    }
  });
});

/** Every index of jobs, column by column: what an upgrade must keep. */
const JOBS_INDEXES =
  "SELECT index_name, seq_in_index, column_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'jobs' ORDER BY index_name, seq_in_index";

/** A temp dir with the migration files numbered below `below`. */
async function filesBelow(below: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-below-${below}-`));
  for (const f of (await migrationFiles()).filter((f) => Number(f.split('_')[0]) < below)) await copyFile(join(MIGRATIONS_DIR, f), join(dir, f));
  return dir;
}

/**
 * A fresh database migrated only with the files numbered below `below` (copied to a temp
 * dir): a schema as a release before `below` left it, for an upgrade test to fill.
 */
async function olderSchema(name: string, below: number) {
  const old = await freshDatabase(name);
  const dir = await mkdtemp(join(tmpdir(), `sluice-${below - 1}-`));
  const db = new Database({ url: old.url, connectionLimit: 1 });
  const q = async (sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> => (await old.pool.query<mysql.RowDataPacket[]>(sql, params))[0];
  const earlier = (await migrationFiles()).filter((f) => Number(f.split('_')[0]) < below);
  for (const f of earlier) await copyFile(join(MIGRATIONS_DIR, f), join(dir, f));
  assert.deepEqual((await migrate(db, dir)).applied, earlier);
  const drop = async (): Promise<void> => {
    await db.end();
    await old.drop();
    await rm(dir, { recursive: true, force: true });
  };
  return { old, db, q, drop };
}

/** Rows in every status, keys active and not, a paused queue, a worker: what a live 001 database holds. */
async function seedSchema001(p: mysql.Pool): Promise<void> {
  await p.query(
    `INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, timeout_ms, concurrency_key, unique_key,
                       worker, progress, result, error, queued_at, started_at, finished_at, cancelled_at, cancel_requested_at, run_at)
     VALUES
       ('Emails', 'http', '{"url": "http://svc/hook", "n": 1}', 'pending', -2, 0, 5, NULL, NULL, 'order-😀', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-02 03:04:05.678'),
       ('emails', 'sleep', '{"ms": 10}', 'pending', 0, 1, 3, 60000, 'res-1', NULL, 'w-old', NULL, NULL, 'Error: attempt 1 failed', NULL, NULL, NULL, NULL, '2026-01-02 00:00:00.000', '2026-01-02 03:04:06.000'),
       ('default', 'sleep', '{"ms": 10}', 'queued', 0, 0, 3, NULL, 'res-1', 'u-queued', 'w-1', NULL, NULL, NULL, '2026-01-02 03:05:00.000', NULL, NULL, NULL, NULL, '2026-01-02 03:04:07.000'),
       ('default', 'Render', '{"page": 2}', 'running', 1, 1, 3, NULL, 'res-2', 'u-queued-2', 'w-1', 40, NULL, NULL, '2026-01-02 03:05:00.000', '2026-01-02 03:05:01.000', NULL, NULL, NULL, '2026-01-02 03:04:08.000'),
       ('reports', 'render', NULL, 'done', 0, 1, 3, NULL, 'res-1', 'u-done', 'w-2', 100, '{"pages": 3}', NULL, '2026-01-02 03:05:00.000', '2026-01-02 03:05:01.000', '2026-01-02 03:05:02.000', NULL, NULL, '2026-01-02 03:04:09.000'),
       ('reports', 'render', '{}', 'failed', 0, 3, 3, NULL, NULL, NULL, 'w-2', NULL, NULL, 'Error: boom', '2026-01-02 03:05:00.000', '2026-01-02 03:05:01.000', '2026-01-02 03:05:03.000', NULL, NULL, '2026-01-02 03:04:10.000'),
       ('reports', 'render', '{}', 'cancelled', 0, 0, 3, NULL, NULL, 'u-cancelled', NULL, NULL, NULL, 'cancelled before it started', NULL, NULL, '2026-01-02 03:05:04.000', '2026-01-02 03:05:04.000', '2026-01-02 03:05:03.500', '2026-01-02 03:04:11.000')`,
  );
  await p.query("INSERT INTO job_queues (name, paused, rate_per_sec, concurrency, timeout_ms) VALUES ('Emails', TRUE, 2.5, 3, 60000)");
  await p.query("INSERT INTO job_workers (id, host, pid, version, queues) VALUES ('w-1', 'node-a', 42, '0.1.0', 'Emails,default')");
}

/** Every row of the three tables (generated columns too) and every index, in a stable order. */
async function snapshot(q: (sql: string) => Promise<mysql.RowDataPacket[]>): Promise<Record<'jobs' | 'queues' | 'workers' | 'indexes', unknown[]>> {
  return {
    jobs: await q('SELECT * FROM jobs ORDER BY id'),
    queues: await q('SELECT * FROM job_queues ORDER BY name'),
    workers: await q('SELECT * FROM job_workers ORDER BY id'),
    indexes: await q(
      `SELECT table_name, index_name, seq_in_index, column_name, non_unique FROM information_schema.statistics
       WHERE table_schema = DATABASE() ORDER BY table_name, index_name, seq_in_index`,
    ),
  };
}
