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

/** The one-queue form the overlay documents for a Deployment that serves `emails`. */
function kedaQueueQuery(queue: string): string {
  const text = readFileSync(join(ROOT, 'k8s/overlays/keda/scaledobject.yaml'), 'utf8');
  const query = /^# per-queue: (.+)$/m.exec(text)?.[1];
  assert.ok(query, 'the overlay documents the per-queue query');
  return query.replace("'emails'", `'${queue}'`);
}

async function count(sql: string): Promise<number> {
  const [rows] = await db.pool.query<mysql.RowDataPacket[]>({ sql, rowsAsArray: true });
  return Number((rows[0] as unknown[])[0]);
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
    await db.pool.query('DELETE FROM job_queues');
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

  it('keda overlay: the backlog query counts jobs that could start now, and nothing else', async () => {
    await insertJobs(db.pool, [{}, {}, { queue: 'mail' }, { runAtOffsetMs: 3_600_000 }, {}, { paused: true }, { queue: 'held' }]);
    await db.pool.query("INSERT INTO job_queues (name, paused) VALUES ('default', FALSE), ('mail', FALSE), ('held', TRUE)");
    await db.pool.query("UPDATE jobs SET status = 'done', finished_at = NOW(3) WHERE id = (SELECT MAX(id) FROM (SELECT id FROM jobs WHERE queue = 'default' AND paused = FALSE AND run_at <= NOW(3)) d)");
    await db.pool.query("UPDATE jobs SET status = 'running' ORDER BY id LIMIT 1");
    // Behind a busy key: one running holder, a parked job and its line's next.
    const [holder, parked, next] = await insertJobs(db.pool, [{ concurrencyKey: 'k' }, { concurrencyKey: 'k' }, { concurrencyKey: 'k' }]);
    await db.pool.query("UPDATE jobs SET status = 'running' WHERE id = ?", [holder]);
    await db.pool.query('UPDATE jobs SET key_wait = 1 WHERE id = ?', [parked]);
    await db.pool.query('UPDATE jobs SET key_wait = 2 WHERE id = ?', [next]);
    // left startable: one pending in default, one in mail (the paused job, the one due in
    // an hour, the paused queue's and the parked one are not), and the key line's next.
    assert.equal(await count(kedaQuery()), 3);
    assert.equal(await count(kedaQueueQuery('mail')), 1);
    assert.equal(await count(kedaQueueQuery('held')), 0, 'a paused queue asks for no replica');
  });

  it('keda overlay: the backlog query stops at its cap, whatever waits', async () => {
    await db.pool.query("INSERT INTO job_queues (name) VALUES ('default'), ('big')");
    await db.pool.query("INSERT INTO jobs (type, queue) SELECT 'sleep', IF(seq % 2 = 0, 'default', 'big') FROM seq_1_to_3000");
    await db.pool.query("INSERT INTO jobs (type, paused) SELECT 'sleep', TRUE FROM seq_1_to_3000");
    assert.equal(await count(kedaQuery()), 1000);
    assert.equal(await count(kedaQueueQuery('big')), 1000);
  });

  it('keda overlay: the backlog queries read the index jobs_claim only, one dive per queue', async () => {
    await db.pool.query(DEMO_SQL);
    await insertJobs(db.pool, Array.from({ length: 200 }, (_, i) => ({ queue: `q${i % 5}`, runAtOffsetMs: i % 2 === 0 ? 0 : 60_000, paused: i % 7 === 0 })));
    await db.pool.query("INSERT INTO job_queues (name) SELECT CONCAT('q', seq) FROM seq_0_to_4");
    // Enough waiting rows that reading every pending entry is plainly dearer than a dive
    // per queue, and fresh statistics for both tables: on a table of 230 rows, with the
    // queue table's statistics not yet recalculated in the background, the optimizer once
    // read jobs first.
    await db.pool.query("INSERT INTO jobs (type, queue) SELECT 'sleep', CONCAT('q', seq % 5) FROM seq_1_to_3000");
    await db.pool.query('ANALYZE TABLE jobs, job_queues');
    for (const query of [kedaQuery(), kedaQueueQuery('q1')]) {
      const [plan] = await db.pool.query<mysql.RowDataPacket[]>(`EXPLAIN ${query}`);
      const step = (plan as Array<{ table: string; key: string | null; ref: string | null; Extra: string | null }>).find((s) => s.table === 'j');
      assert.ok(step, `jobs is read (plan: ${JSON.stringify(plan)})`);
      assert.equal(step.key, 'jobs_claim', `uses the index jobs_claim (plan: ${JSON.stringify(plan)})`);
      assert.equal(step.ref?.split(',').length, 3, `seeks (status, queue, lane 0) per queue (plan: ${JSON.stringify(plan)})`);
      assert.match(step.Extra ?? '', /Using index/, `covered by the index, no row reads (plan: ${JSON.stringify(plan)})`);
    }
  });
});
