import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { ClaimSession } from '../../src/db/claim-session.js';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { jobsMarkQueued, jobsSelectReady } from '../../src/db/queries/jobs-claim.js';
import type { Daemon } from '../../src/daemon.js';
import { closeFixtures, startDaemon, testEnv } from '../helpers/daemon.js';
import { type FreshDatabase, freshDatabase, queriesOn, waitFor } from '../helpers/database.js';
import { getJob, insertJob, insertJobs } from '../helpers/factory.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;

const { count } = queriesOn(() => pool);

describe('claims continue where the last one stopped', () => {
  before(async () => {
    fresh = await freshDatabase('cursor');
    pool = fresh.pool;
  });
  after(async () => {
    await closeFixtures();
    await fresh?.drop();
  });

  it('a cursor claim takes the rows after the cursor, in claim order; without one, from the head', async () => {
    const db = new Database({ url: fresh.url, connectionLimit: 2 });
    const session = new ClaimSession(db);
    try {
      await migrate(db);
      const ids = await insertJobs(pool, Array.from({ length: 10 }, (_, i) => ({ queue: 'cur', priority: i < 5 ? 0 : 1 })));
      const first = await session.transaction('t', async (tx) => {
        const rows = await jobsSelectReady(tx, 'cur', 3);
        await jobsMarkQueued(tx, 'w', rows.map((r) => r.id));
        return rows;
      });
      assert.deepEqual(first.map((r) => r.id), ids.slice(0, 3));
      const last = first.at(-1)!;
      // A more urgent job arrives: a cursor claim does not see it, a claim from the head does.
      const urgent = await insertJob(pool, { queue: 'cur', priority: -1 });
      const next = await session.transaction('t', (tx) => jobsSelectReady(tx, 'cur', 4, { priority: last.priority, runAt: last.runAt, id: last.id }));
      assert.deepEqual(next.map((r) => r.id), ids.slice(3, 7), 'across the priority boundary, in order');
      const head = await session.transaction('t', (tx) => jobsSelectReady(tx, 'cur', 2));
      assert.deepEqual(head.map((r) => r.id), [urgent, ids[3]]);
    } finally {
      await session.end();
      await db.end();
    }
  });

  it('a more urgent job inserted while a long backlog drains does not wait for the backlog', async () => {
    const daemon: Daemon = await startDaemon(
      testEnv(fresh.url, { SLUICE_WORKER_ID: 'drain', SLUICE_POLL_MS: '100', SLUICE_CONCURRENCY: '10', SLUICE_PREFETCH: '20', SLUICE_QUEUES: 'drain' }),
    );
    try {
      // 5000 jobs of 5 ms over 10 slots: seconds of full claims in a row, while a look
      // from the head comes once a second (CURSOR_LIFE_MIN_MS: the poll here is shorter).
      const backlog = await insertJobs(pool, Array.from({ length: 5000 }, () => ({ queue: 'drain', payload: { ms: 5 } })));
      await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE queue = 'drain' AND status = 'done'")) >= 200, {
        message: 'the drain is under way',
      });
      const urgent = await insertJob(pool, { queue: 'drain', priority: -10 });
      await waitFor(async () => (await getJob(pool, urgent)).status === 'done', { timeoutMs: 60_000, message: 'the urgent job ran' });
      const startedAt = (await getJob(pool, urgent)).started_at;
      const later = await count('SELECT COUNT(*) n FROM jobs WHERE id IN (?) AND (started_at IS NULL OR started_at > ?)', [backlog, startedAt]);
      // At most 2000 jobs start in a second here: at least 2800 start after it.
      assert.ok(later > 1500, `the urgent job started before most of the backlog (${later} backlog jobs started after it)`);
      await waitFor(async () => (await count("SELECT COUNT(*) n FROM jobs WHERE queue = 'drain' AND status = 'done'")) === 5001, {
        timeoutMs: 60_000,
        message: 'every job done',
      });
      assert.equal(await count("SELECT COUNT(*) n FROM jobs WHERE queue = 'drain' AND attempts <> 1"), 0, 'each ran once');
    } finally {
      await daemon.stop();
    }
  });
});
