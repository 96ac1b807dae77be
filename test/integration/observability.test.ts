import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { closeFixtures, startDaemon, testEnv } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { getJob, insertJob } from '../helpers/factory.js';

let db: FreshDatabase;
let daemon: Daemon;

async function get(path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${daemon.httpPort}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('/healthz, /readyz and /metrics', () => {
  before(async () => {
    db = await freshDatabase('observability');
    daemon = await startDaemon(testEnv(db.url));
  });
  after(async () => {
    await daemon?.stop();
    await closeFixtures();
    await db?.drop();
  });

  it('is live and ready once the database answers and migrations are done', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/readyz')).status, 200);
    assert.equal((await get('/nope')).status, 404);
  });

  it('exports sluice_* job, claim, channel, limiter, database and leader metrics with bounded labels', async () => {
    const id = await insertJob(db.pool, { payload: { ms: 5 } });
    await waitFor(async () => (await getJob(db.pool, id)).status === 'done');
    const { status, body, type } = await get('/metrics');
    assert.equal(status, 200);
    assert.match(type ?? '', /text\/plain/);
    for (const name of [
      'sluice_jobs_started_total{queue="default",type="sleep"} 1',
      'sluice_jobs_finished_total{queue="default",type="sleep",outcome="done"} 1',
      'sluice_job_duration_seconds_bucket',
      'sluice_job_pickup_seconds_bucket',
      'sluice_claim_batch_size_bucket',
      'sluice_claim_duration_seconds_bucket',
      'sluice_channel_depth 0',
      'sluice_jobs_running 0',
      'sluice_limiter_wait_seconds_bucket',
      'sluice_db_statements_total{statement="jobsProbe"}',
      'sluice_leader 1',
      'sluice_ready 1',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      assert.ok(body.includes(name), `missing ${name}`);
    }
    assert.doesNotMatch(body, /job_id=/, 'no job ids in labels');
  });

  it('counts statements and failed statements through the database hook, by name and retryability', async () => {
    await assert.rejects(daemon.db.run('testMissingTable', 'SELECT * FROM no_such_table'), /no_such_table/);
    await daemon.db.run('testSelectOne', 'SELECT 1');
    const { body } = await get('/metrics');
    assert.ok(body.includes('sluice_db_statements_total{statement="testMissingTable"} 1'), 'a failed statement is counted');
    assert.ok(body.includes('sluice_db_errors_total{statement="testMissingTable",retryable="false"} 1'), 'and counted as an error');
    assert.ok(body.includes('sluice_db_statements_total{statement="testSelectOne"} 1'));
    assert.doesNotMatch(body, /sluice_db_errors_total\{statement="testSelectOne"/, 'a statement that succeeded is no error');
  });

  it('readiness turns false while stopping', async () => {
    const stopping = daemon.stop();
    assert.equal(daemon.isReady(), false);
    await stopping;
  });
});
