import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { MIGRATIONS_DIR, migrate, migrationsDone } from '../../src/db/migrate.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;

/** Every migration file, in order (each test expects all of them, whoever adds the next). */
const FILES = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort();
const LATEST = Math.max(...FILES.map((f) => Number(f.split('_')[0])));

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
      assert.deepEqual(applied, FILES, 'exactly one process applied each');
      assert.ok(results.every((r) => r.current === LATEST));
      assert.equal(await migrationsDone(dbs[0]!), true);
    } finally {
      await Promise.all(dbs.map((db) => db.end()));
    }
    for (const t of ['job_queues', 'job_schedules', 'job_stats', 'job_workers', 'jobs', 'sluice_migrations']) assert.ok((await tables()).includes(t), `${t} missing`);
    const [[row]] = (await pool.query('SELECT COUNT(*) n FROM sluice_migrations')) as unknown as [[{ n: number }]];
    assert.equal(Number(row.n), FILES.length);
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
      assert.ok(cli.output().includes(`"applied":${JSON.stringify(FILES)}`), cli.output());
      const again = spawnDaemon({ DATABASE_URL: other.url }, ['migrate']);
      assert.equal(await again.exited, 0);
      assert.match(again.output(), /"applied":\[\]/);
    } finally {
      await other.drop();
    }
  });
});
