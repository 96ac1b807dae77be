// The SQL that k8s/ runs against the user's database, run against a real server: the demo
// overlay's INSERT of the classic demo jobs, and the KEDA overlay's backlog query, which
// must count the right rows and read only the index jobs_claim.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { parse } from 'yaml';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';
import { insertJobs } from '../helpers/factory.js';
import { ROOT } from '../helpers/k8s.js';

const DEMO_SQL = readFileSync(join(ROOT, 'k8s/overlays/demo/demo-jobs.sql'), 'utf8');

/** The query of the ScaledObject's mysql trigger, as written in the keda overlay. */
function kedaQuery(): string {
  const scaled = parse(readFileSync(join(ROOT, 'k8s/overlays/keda/scaledobject.yaml'), 'utf8')) as {
    spec: { triggers: Array<{ type: string; metadata: { query: string } }> };
  };
  const trigger = scaled.spec.triggers.find((t) => t.type === 'mysql');
  assert.ok(trigger, 'the ScaledObject has a mysql trigger');
  return trigger.metadata.query;
}

let db: FreshDatabase;

describe('SQL of the Kubernetes overlays, on a real server', () => {
  before(async () => {
    db = await freshDatabase('k8s_sql');
    const database = new Database({ url: db.url, connectionLimit: 1 });
    try {
      await migrate(database);
    } finally {
      await database.end();
    }
  });
  after(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    await db.pool.query('DELETE FROM jobs');
  });

  it('demo overlay: inserts the 30 classic jobs, every third stuck, all with a 10 s timeout', async () => {
    await db.pool.query(DEMO_SQL);
    const [rows] = await db.pool.query<mysql.RowDataPacket[]>(
      `SELECT type, queue, status, JSON_TYPE(JSON_EXTRACT(payload, '$.ms')) AS ms_type,
              JSON_EXTRACT(payload, '$.ms') AS ms, timeout_ms
       FROM jobs ORDER BY id`,
    );
    assert.equal(rows.length, 30);
    rows.forEach((row, i) => {
      const stuck = (i + 1) % 3 === 0;
      assert.deepEqual(
        { type: row.type, queue: row.queue, status: row.status, msType: row.ms_type, timeoutMs: row.timeout_ms },
        { type: 'sleep', queue: 'default', status: 'pending', msType: stuck ? 'NULL' : 'INTEGER', timeoutMs: 10_000 },
        `job ${i + 1}`,
      );
      if (!stuck) assert.equal(Number(row.ms), 1000, `job ${i + 1} sleeps one second`);
    });
  });

  it('keda overlay: the backlog query counts pending jobs that are due, and nothing else', async () => {
    await insertJobs(db.pool, [{}, {}, { queue: 'mail' }, { runAtOffsetMs: 3_600_000 }, {}]);
    await db.pool.query("UPDATE jobs SET status = 'done', finished_at = NOW(3) ORDER BY id DESC LIMIT 1");
    await db.pool.query("UPDATE jobs SET status = 'running' ORDER BY id LIMIT 1");
    // left: one running, one done, one due in an hour, two pending and due (two queues)
    const [rows] = await db.pool.query<mysql.RowDataPacket[]>({ sql: kedaQuery(), rowsAsArray: true });
    assert.deepEqual(
      rows.map((r) => Number((r as unknown[])[0])),
      [2],
    );
  });

  it('keda overlay: the backlog query reads the index jobs_claim only', async () => {
    await db.pool.query(DEMO_SQL);
    await insertJobs(db.pool, Array.from({ length: 200 }, (_, i) => ({ queue: `q${i % 5}`, runAtOffsetMs: i % 2 === 0 ? 0 : 60_000 })));
    await db.pool.query('ANALYZE TABLE jobs');
    const [plan] = await db.pool.query<mysql.RowDataPacket[]>(`EXPLAIN ${kedaQuery()}`);
    assert.equal(plan.length, 1, 'one table read');
    const step = plan[0] as { key: string | null; Extra: string | null };
    assert.equal(step.key, 'jobs_claim', `uses the index jobs_claim (plan: ${JSON.stringify(plan)})`);
    assert.match(step.Extra ?? '', /Using index/, `covered by the index, no row reads (plan: ${JSON.stringify(plan)})`);
  });
});
