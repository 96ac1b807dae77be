import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { Database } from '../../src/db/database.js';
import { migrate, migrationsDone } from '../../src/db/migrate.js';
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
      assert.deepEqual(applied, ['001_init.sql'], 'exactly one process applied it');
      assert.ok(results.every((r) => r.current === 1));
      assert.equal(await migrationsDone(dbs[0]!), true);
    } finally {
      await Promise.all(dbs.map((db) => db.end()));
    }
    assert.deepEqual(await tables(), ['job_queues', 'job_stats', 'job_workers', 'jobs', 'sluice_migrations']);
    const [[row]] = (await pool.query('SELECT COUNT(*) n FROM sluice_migrations')) as unknown as [[{ n: number }]];
    assert.equal(Number(row.n), 1);
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
      assert.match(cli.output(), /"applied":\["001_init.sql"\]/);
      const again = spawnDaemon({ DATABASE_URL: other.url }, ['migrate']);
      assert.equal(await again.exited, 0);
      assert.match(again.output(), /"applied":\[\]/);
    } finally {
      await other.drop();
    }
  });
});
