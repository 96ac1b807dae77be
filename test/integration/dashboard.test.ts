import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { DashboardServer } from '../../src/dashboard/dashboard-server.js';
import { DashboardDb } from '../../src/dashboard/dashboard-db.js';
import { statusQueueRanges } from '../../src/db/queries/dashboard-jobs.js';
import { Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/observability/logger.js';
import { DashboardSnapshotPublisher } from '../../src/publishers/dashboard-snapshot-publisher.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/dashboard.js';

// The snapshot, lists, actions and guards against the real database, without a browser.

let db: FreshDatabase;
let daemonDb: Database;
let server: DashboardServer;
let readOnly: DashboardServer;
let base: string;
let roBase: string;
const leader = { isLeader: () => true, start: async () => {}, stop: async () => {}, onChange: () => {} };

async function rows(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  const [r] = await db.pool.query<mysql.RowDataPacket[]>(sql, params);
  return r;
}

describe('dashboard against the database', () => {
  before(async () => {
    db = await freshDatabase('dashboard');
    daemonDb = new Database({ url: db.url, connectionLimit: 2 });
    await migrate(daemonDb);
    const logger = createLogger('error', {});
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = new DashboardServer({ databaseUrl: db.url, port, host: '127.0.0.1', actions: true, logger });
    await server.start();
    const roPort = await freePort();
    roBase = `http://127.0.0.1:${roPort}`;
    readOnly = new DashboardServer({ databaseUrl: db.url, port: roPort, host: '127.0.0.1', actions: false, logger });
    await readOnly.start();
  });

  after(async () => {
    await server?.stop();
    await readOnly?.stop();
    await daemonDb?.end();
    await db?.drop();
  });

  it('counts active statuses per queue, capped, and never lists zero rows', async () => {
    await db.pool.query("INSERT INTO jobs (queue, type) SELECT 'big', 'sleep' FROM seq_1_to_25");
    await db.pool.query("INSERT INTO jobs (queue, type) SELECT 'small', 'sleep' FROM seq_1_to_20");
    const snap = new DashboardSnapshotPublisher({ db: daemonDb, leader, worker: 'me', intervalMs: 1000, countCap: 20 });
    await snap.refresh();
    const counts = await rows('SELECT queue, status, n, capped FROM job_counts ORDER BY queue');
    assert.deepEqual(
      counts.map((r) => [r.queue, r.status, Number(r.n), Number(r.capped)]),
      [
        ['big', 'pending', 20, 1],
        ['small', 'pending', 20, 0],
      ],
    );
    const o = (await (await fetch(`${base}/api/overview`)).json()) as { leader: string; queues: Array<{ name: string; counts: Record<string, { label: string }> }> };
    assert.equal(o.leader, 'me');
    assert.equal(o.queues.find((q) => q.name === 'big')?.counts.pending?.label, '20+');
    assert.equal(o.queues.find((q) => q.name === 'small')?.counts.pending?.label, '20');
  });

  it('adds what finished since the last tick to its minute, once, even across two publishers', async () => {
    await db.pool.query("UPDATE jobs SET status = 'done', finished_at = NOW(3) WHERE queue = 'small' LIMIT 5");
    const a = new DashboardSnapshotPublisher({ db: daemonDb, leader, worker: 'a', intervalMs: 1000 });
    const b = new DashboardSnapshotPublisher({ db: daemonDb, leader, worker: 'b', intervalMs: 1000 });
    // Two leaders for a while: a tick may lose a deadlock (retryable: its poller backs off
    // and ticks again) but never counts a row twice.
    // Rows are counted LAG_S (2 s) behind the clock, so tick until they are.
    const sum = async (): Promise<number> => Number((await rows("SELECT SUM(n) AS n FROM job_throughput WHERE queue = 'small' AND status = 'done'"))[0]?.n ?? 0);
    await waitFor(
      async () => {
        const ticks = await Promise.allSettled([a.tick(), b.tick(), a.tick()]);
        for (const t of ticks) if (t.status === 'rejected') assert.equal((t.reason as { errno?: number }).errno, 1213);
        return (await sum()) > 0;
      },
      { timeoutMs: 10_000, intervalMs: 200, message: 'finished rows never counted' },
    );
    await Promise.allSettled([a.tick(), b.tick()]);
    assert.equal(await sum(), 5);
  });

  it("the leader's tick waits four intervals after a tick that found nothing finished, one after one that did", async () => {
    const c = new DashboardSnapshotPublisher({ db: daemonDb, leader, worker: 'c', intervalMs: 1000 });
    // Caught up (the first ticks backfill the last hour, a window at a time), nothing new.
    let delay = 0;
    await waitFor(async () => (delay = await c.runOnce()) !== 0, { timeoutMs: 10_000, intervalMs: 1, message: 'never caught up' });
    assert.equal(delay, 4000);
    await db.pool.query("UPDATE jobs SET status = 'done', finished_at = NOW(3) WHERE queue = 'small' AND status = 'pending' LIMIT 1");
    // Counted LAG_S (2 s) behind the clock: ticks until it is; that tick asks for one interval.
    await waitFor(async () => (await c.runOnce()) === 1000, { timeoutMs: 10_000, intervalMs: 200, message: 'a tick that counted a finished job still waited long' });
  });

  it('lists newest first, paged by id, with a next link until the end', async () => {
    const first = (await (await fetch(`${base}/api/jobs?queue=big&status=pending&limit=10`)).json()) as { items: Array<{ id: number }>; next: string | null };
    assert.equal(first.items.length, 10);
    assert.ok(first.items.every((j, i) => i === 0 || j.id < first.items[i - 1]!.id));
    assert.ok(first.next);
    const seen = [...first.items.map((j) => j.id)];
    for (let next: string | null = first.next; next; ) {
      const page = (await (await fetch(base + next)).json()) as { items: Array<{ id: number }>; next: string | null };
      seen.push(...page.items.map((j) => j.id));
      next = page.next;
    }
    assert.equal(seen.length, 25);
    assert.equal(new Set(seen).size, 25);
    assert.equal((await fetch(`${base}/api/jobs?status=nonsense`)).status, 400);
  });

  it('lists pending jobs of every lane and priority newest first by run_at, each once across pages', async () => {
    // Lane 0 at three priorities, lane 1 (scheduled), lane 3 (paused), with run_at apart.
    await db.pool.query(
      `INSERT INTO jobs (queue, type, priority, run_at, paused) VALUES
         ('lanes', 'sleep', 5, '2026-01-01 00:00:01.000', FALSE),
         ('lanes', 'sleep', 0, '2026-01-01 00:00:03.000', FALSE),
         ('lanes', 'sleep', -1, '2026-01-01 00:00:02.000', FALSE),
         ('lanes', 'sleep', 0, '2999-01-01 00:00:00.000', FALSE),
         ('lanes', 'sleep', 0, '2026-01-01 00:00:04.000', TRUE),
         ('lanes', 'sleep', 0, '2026-01-01 00:00:03.000', FALSE)`,
    );
    const byRunAt = (await rows("SELECT id FROM jobs WHERE queue = 'lanes' ORDER BY run_at DESC, id DESC")).map((r) => Number(r.id));
    assert.deepEqual(
      (await rows("SELECT DISTINCT claim_lane AS l FROM jobs WHERE queue = 'lanes' ORDER BY l")).map((r) => r.l),
      [0, 1, 3],
      'the rows sit in three lanes',
    );
    for (const status of ['pending', '']) {
      const seen: number[] = [];
      for (let next: string | null = `/api/jobs?queue=lanes&status=${status}&limit=2`; next; ) {
        const page = (await (await fetch(base + next)).json()) as { items: Array<{ id: number }>; next: string | null };
        seen.push(...page.items.map((j) => j.id));
        next = page.next;
      }
      assert.deepEqual(seen, byRunAt, `status=${status || 'any'}`);
    }
    assert.equal((await fetch(`${base}/api/jobs?queue=lanes&status=pending&at=yesterday&before=5`)).status, 400);
  });

  it('lists the pending jobs of the first 20 priorities of a queue that has more, and says so', async () => {
    await db.pool.query("INSERT INTO jobs (queue, type, priority) SELECT 'prio', 'sleep', seq FROM seq_1_to_22");
    const page = (await (await fetch(`${base}/api/jobs?queue=prio&status=pending&limit=200`)).json()) as { items: Array<{ priority: number }>; notes: string[] };
    assert.deepEqual(page.items.map((j) => j.priority).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.ok(page.notes.some((n) => /more than 20 priorities/.test(n)), JSON.stringify(page.notes));
  });

  it('lists each status apart from its ranges of jobs_claim, newest first, never sorted by the server', async () => {
    await db.pool.query("INSERT INTO jobs (queue, type) SELECT 'mix', 'sleep' FROM seq_1_to_7");
    const ids = (await rows("SELECT id FROM jobs WHERE queue = 'mix' ORDER BY id")).map((r) => Number(r.id));
    await db.pool.query("UPDATE jobs SET status = 'queued', worker = 'w', queued_at = NOW(3) WHERE id IN (?)", [ids.slice(0, 2)]);
    await db.pool.query("UPDATE jobs SET status = 'running', worker = 'w', started_at = NOW(3), attempts = 1 WHERE id = ?", [ids[2]]);
    await db.pool.query("UPDATE jobs SET status = 'done', worker = 'w', finished_at = NOW(3), attempts = 1 WHERE id = ?", [ids[3]]);
    const all = async (status: string): Promise<Array<[number, string]>> => {
      const out: Array<[number, string]> = [];
      for (let next: string | null = `/api/jobs?queue=mix&status=${status}&limit=2`; next; ) {
        const page = (await (await fetch(base + next)).json()) as { items: Array<{ id: number; status: string }>; next: string | null };
        out.push(...page.items.map((j): [number, string] => [j.id, j.status]));
        next = page.next;
      }
      return out;
    };
    assert.deepEqual(await all('pending'), ids.slice(4).reverse().map((id) => [id, 'pending']));
    assert.deepEqual(await all('queued'), ids.slice(0, 2).reverse().map((id) => [id, 'queued']));
    assert.deepEqual(await all('running'), [[ids[2], 'running']]);
    assert.deepEqual(await all('done'), [[ids[3], 'done']]);
    for (const status of ['pending', 'queued', 'running', 'done']) {
      for (const range of (await statusQueueRanges(daemonDb, status, 'mix')).ranges) {
        const plan = await rows(
          `EXPLAIN SELECT id FROM jobs FORCE INDEX (jobs_claim) WHERE ${range.where} AND (run_at < ? OR (run_at = ? AND id < ?)) ORDER BY run_at DESC, id DESC LIMIT 10`,
          [...range.params, '2999-01-01 00:00:00', '2999-01-01 00:00:00', 1e9],
        );
        assert.equal(plan[0]?.key, 'jobs_claim', `${status}: ${JSON.stringify(plan)}`);
        assert.doesNotMatch(String(plan[0]?.Extra), /filesort|temporary/i, `${status}: ${JSON.stringify(plan)}`);
      }
    }
    // A bulk action on queued jobs takes exactly those.
    const res = await fetch(`${base}/api/jobs/bulk`, {
      method: 'POST',
      headers: { 'x-requested-by': 'test', 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ action: 'cancel', queue: 'mix', status: 'queued', all: '1' }),
    });
    assert.equal(res.status, 200);
    const asked = await rows("SELECT id FROM jobs WHERE queue = 'mix' AND cancel_requested_at IS NOT NULL ORDER BY id");
    assert.deepEqual(asked.map((r) => Number(r.id)), ids.slice(0, 2));
  });

  it('answers the refresh poll 304 while nothing changed', async () => {
    const one = await fetch(`${base}/api/version`);
    const etag = one.headers.get('etag');
    assert.ok(etag);
    const two = await fetch(`${base}/api/version`, { headers: { 'if-none-match': etag } });
    assert.equal(two.status, 304);
  });

  it('acts only with a same-origin token or a script header, and only when actions are on', async () => {
    const [job] = await rows("SELECT id FROM jobs WHERE queue = 'big' ORDER BY id LIMIT 1");
    const id = Number(job?.id);
    const path = `/api/jobs/${id}/cancel`;
    assert.equal((await fetch(roBase + path, { method: 'POST', headers: { 'x-requested-by': 'test' } })).status, 403, 'read-only replica');
    assert.equal((await fetch(base + path, { method: 'POST' })).status, 403, 'no token');
    assert.equal((await fetch(base + path, { method: 'POST', headers: { 'x-requested-by': 't', origin: 'http://evil.example' } })).status, 403, 'other origin');
    assert.equal((await fetch(base + path, { method: 'POST', headers: { 'x-requested-by': 't', 'sec-fetch-site': 'cross-site' } })).status, 403, 'cross-site');
    // A page's cookie and form token.
    const page = await fetch(`${base}/jobs/${id}`);
    const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
    const token = /name="token" value="([0-9a-f]+)"/.exec(await page.text())?.[1];
    assert.ok(token);
    const res = await fetch(base + path, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin: base, 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${token}&return=/jobs/${id}`,
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', new RegExp(`^/jobs/${id}\\?notice=`));
    const [after] = await rows('SELECT cancel_requested_at FROM jobs WHERE id = ?', [id]);
    assert.ok(after?.cancel_requested_at);
  });

  it('bulk-pauses every pending job of a queue in chunks, and pauses a queue', async () => {
    const res = await fetch(`${base}/api/jobs/bulk`, {
      method: 'POST',
      headers: { 'x-requested-by': 'test', 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ action: 'pause', queue: 'big', status: 'pending', all: '1' }),
    });
    assert.equal(res.status, 200);
    const [n] = await rows("SELECT COUNT(*) AS n FROM jobs WHERE queue = 'big' AND status = 'pending' AND paused = 0");
    assert.equal(Number(n?.n), 0);
    const q = await fetch(`${base}/api/queues/big/pause`, { method: 'POST', headers: { 'x-requested-by': 'test', accept: 'application/json' } });
    assert.equal(q.status, 200);
    const [queue] = await rows("SELECT paused FROM job_queues WHERE name = 'big'");
    assert.equal(Number(queue?.paused), 1);
  });

  it('stops a slow statement at the server-side limit', async () => {
    const limited = new DashboardDb({ url: db.url, limitMs: 200 });
    try {
      const started = Date.now();
      await assert.rejects(limited.run('sleep', 'SELECT SLEEP(5) AS s FROM DUAL WHERE 1 = (SELECT 1 FROM jobs LIMIT 1) + 0 * SLEEP(5)'), (err: { errno?: number }) => err.errno === 1969);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await limited.end();
    }
  });
});
