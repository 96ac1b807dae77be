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

describe('/healthz when the state writer is stuck', () => {
  let sdb: FreshDatabase;
  let stuck: Daemon;
  before(async () => {
    sdb = await freshDatabase('healthz_stuck');
    stuck = await startDaemon(testEnv(sdb.url), { writerStuckMs: 500 });
  });
  after(async () => {
    await stuck?.stop();
    await sdb?.drop();
  });

  it('turns 503 while outcome writes keep failing although the database answers, and 200 once they land', async () => {
    const health = async (): Promise<number> => (await fetch(`http://127.0.0.1:${stuck.httpPort}/healthz`)).status;
    assert.equal(await health(), 200);
    // Every outcome write now fails with a retryable error (a deadlock, as far as sluice can
    // tell), while the probe, claims and heartbeats go on.
    await sdb.pool.query(`CREATE TRIGGER jobs_refuse_done BEFORE UPDATE ON jobs FOR EACH ROW
      BEGIN IF NEW.status = 'done' THEN SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'refused by the test'; END IF; END`);
    const id = await insertJob(sdb.pool, { payload: { ms: 0 } });
    await waitFor(async () => (await health()) === 503, { timeoutMs: 15_000, message: '/healthz never turned 503' });
    assert.equal((await fetch(`http://127.0.0.1:${stuck.httpPort}/readyz`)).status, 200, 'still ready: the database answers');
    await sdb.pool.query('DROP TRIGGER jobs_refuse_done');
    await waitFor(async () => (await getJob(sdb.pool, id)).status === 'done', { timeoutMs: 15_000, message: 'the outcome lands once the server takes it' });
    await waitFor(async () => (await health()) === 200, { message: '/healthz back to 200' });
  });
});
