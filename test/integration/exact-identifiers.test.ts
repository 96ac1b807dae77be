// Identifiers compare exactly (DESIGN: "Text columns compare exactly"; migration 002):
// queue, type, worker, concurrency_key and unique_key are utf8mb4_bin, so SQL tells apart
// what SLUICE_QUEUES and handler code tell apart, and a user's table in the server's
// default collation joins to them with a plain `=`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import type { Daemon } from '../../src/daemon.js';
import { jobsProbe, workersHeartbeatIfQuiet } from '../../src/db/queries/probe.js';
import { closeFixtures, startDaemon, statementCount, testEnv } from '../helpers/daemon.js';
import { type FreshDatabase, freshDatabase, queriesOn, waitFor } from '../helpers/database.js';
import { getJob, insertJob, insertJobs, waitFinished } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;
/** Serves `Emails` (capital E), `keys` and `joins`; its worker id has capitals too. */
let upper: Daemon;
const UPPER = 'Replica-Upper';
const daemons: Daemon[] = [];

const { rows } = queriesOn(() => pool);

describe('identifiers compare exactly (utf8mb4_bin)', () => {
  before(async () => {
    db = await freshDatabase('exact_identifiers');
    pool = db.pool;
    upper = await startDaemon(testEnv(db.url, { SLUICE_WORKER_ID: UPPER, SLUICE_QUEUES: 'Emails,keys,joins' }));
    daemons.push(upper);
  });
  after(async () => {
    for (const d of daemons.reverse()) await d.stop();
    await closeFixtures();
    await db?.drop();
  });

  it('a replica serving `Emails` runs the job in `Emails` and never claims the one in `emails`', async () => {
    // `emails` first: under a _ci collation it is the one the probe registers and sees.
    const lowerId = await insertJob(pool, { queue: 'emails' });
    const upperId = await insertJob(pool, { queue: 'Emails' });
    const ran = await waitFinished(pool, upperId);
    assert.equal(ran.status, 'done');
    assert.equal(ran.worker, UPPER);

    // Idle from here: several more polls, and not one claim among them.
    const probesAtDone = await statementCount(upper, 'jobsProbe');
    await waitFor(async () => (await statementCount(upper, 'jobsProbe')) >= probesAtDone + 2, { message: 'two probes after the job ended' });
    const claims = await statementCount(upper, 'jobsSelectReady');
    const probes = await statementCount(upper, 'jobsProbe');
    await waitFor(async () => (await statementCount(upper, 'jobsProbe')) >= probes + 5, { message: 'five more probes' });
    assert.equal(await statementCount(upper, 'jobsSelectReady'), claims, 'no claim: the probes saw nothing due for this replica');

    const other = await getJob(pool, lowerId);
    assert.deepEqual([other.status, other.worker, other.attempts], ['pending', null, 0], 'the `emails` job is untouched');

    // The statements the replica polls with: its probe sees only `Emails`, nothing due,
    // and its idle heartbeat finds all quiet (under _ci both saw the `emails` job as due).
    const probe = await jobsProbe(upper.db, { queues: ['Emails'], deadAfterMs: 30_000 });
    assert.deepEqual(probe.queues.map((q) => [q.name, q.ready]), [['Emails', false]]);
    assert.deepEqual(probe.newQueues, []);
    assert.equal(await workersHeartbeatIfQuiet(upper.db, { worker: UPPER, queues: ['Emails'] }), true, 'all quiet for a replica serving Emails');

    // `emails` is a queue of its own: a replica serving it runs that job.
    const lower = await startDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'replica-lower', SLUICE_QUEUES: 'emails' }));
    daemons.push(lower);
    const ranLower = await waitFinished(pool, lowerId);
    assert.deepEqual([ranLower.status, ranLower.worker], ['done', 'replica-lower']);
    const queues = await rows("SELECT name FROM job_queues WHERE name IN ('Emails', 'emails') ORDER BY name");
    assert.deepEqual(queues.map((r) => r.name), ['Emails', 'emails'], 'two job_queues rows');
  });

  it("unique keys 'o-😀' and 'o-🎉' are two keys; 'o-😀' twice is still refused", async () => {
    // `parked` is served by no replica here: the jobs stay pending, their keys active.
    const ids = await insertJobs(pool, [
      { queue: 'parked', uniqueKey: 'o-😀' },
      { queue: 'parked', uniqueKey: 'o-🎉' },
      { queue: 'parked', uniqueKey: 'O-😀' },
    ]);
    assert.equal(ids.length, 3);
    const stored = await rows('SELECT unique_key FROM jobs WHERE id IN (?) ORDER BY id', [ids]);
    assert.deepEqual(stored.map((r) => r.unique_key), ['o-😀', 'o-🎉', 'O-😀'], 'stored as given');
    await assert.rejects(insertJob(pool, { queue: 'parked', uniqueKey: 'o-😀' }), (err: { code?: string }) => err.code === 'ER_DUP_ENTRY');
    const [ignored] = await pool.query<mysql.ResultSetHeader>("INSERT IGNORE INTO jobs (queue, type, unique_key) VALUES ('parked', 'sleep', 'o-🎉')");
    assert.equal(ignored.affectedRows, 0, 'INSERT IGNORE skips the duplicate');
  });

  it("jobs with concurrency keys '😀' and '🎉' run at the same time; a second '😀' waits", async () => {
    const [smile, party, smileAgain] = await insertJobs(pool, [
      { queue: 'keys', payload: { ms: null }, concurrencyKey: '😀', timeoutMs: 20_000 },
      { queue: 'keys', payload: { ms: null }, concurrencyKey: '🎉', timeoutMs: 20_000 },
      { queue: 'keys', payload: { ms: null }, concurrencyKey: '😀', timeoutMs: 20_000 },
    ]);
    try {
      await waitFor(async () => (await rows("SELECT id FROM jobs WHERE id IN (?) AND status = 'running'", [[smile, party]])).length === 2, {
        message: 'both keyed jobs running at once',
      });
      const waiting = await getJob(pool, smileAgain!);
      assert.deepEqual([waiting.status, waiting.worker], ['pending', null], 'the same key still excludes');
    } finally {
      // Whatever happened, these stuck jobs must not hold up the replica for the next test.
      await pool.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id IN (?)', [[smile, party, smileAgain]]);
    }
    for (const id of [smile!, party!, smileAgain!]) assert.equal((await waitFinished(pool, id)).status, 'cancelled');
  });

  it("a user's table in utf8mb4_general_ci joins to worker, queue, unique_key and job_queues.name with `=`", async () => {
    const id = await insertJob(pool, { queue: 'joins', uniqueKey: 'join-😀' });
    assert.equal((await waitFinished(pool, id)).worker, UPPER);
    // The server's default collation here, named so the test does not depend on it.
    await pool.query('CREATE TABLE watch (label VARCHAR(32) NOT NULL, v VARCHAR(255) NOT NULL) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci');
    await pool.query(
      `INSERT INTO watch (label, v) VALUES ('worker', ?), ('worker, lower case', ?), ('queue', 'joins'), ('queue, upper case', 'JOINS'),
         ('key', 'join-😀'), ('key, other emoji', 'join-🎉')`,
      [UPPER, UPPER.toLowerCase()],
    );
    const joined = async (column: string): Promise<string[]> =>
      (await rows(`SELECT w.label FROM watch w JOIN jobs j ON j.${column} = w.v WHERE j.id = ? ORDER BY w.label`, [id])).map((r) => String(r.label));
    assert.deepEqual(await joined('worker'), ['worker']);
    assert.deepEqual(await joined('queue'), ['queue']);
    assert.deepEqual(await joined('unique_key'), ['key']);
    const named = await rows('SELECT w.label, q.name FROM watch w JOIN job_queues q ON q.name = w.v ORDER BY w.label');
    assert.deepEqual(named.map((r) => [r.label, r.name]), [['queue', 'joins']]);
  });
});
