// Workflows end to end with real daemon processes (`node dist/main.js`): fan-out/fan-in
// by SQL across three replicas with a kill -9, ctx.enqueue with wait, fail-fast, a
// three-level cascade, children that end before the seal, and an http parent fanning in.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { spawnReplicas, stopReplicas, type DaemonProcess } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { createEffectsTable } from '../helpers/factory.js';

let db: FreshDatabase;
let pool: mysql.Pool;

async function rows(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  const [r] = await pool.query<mysql.RowDataPacket[]>(sql, params);
  return r;
}

async function one(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket> {
  const [r] = await rows(sql, params);
  assert.ok(r, `no row for ${sql}`);
  return r;
}

async function insert(sql: string, params: unknown[] = []): Promise<number> {
  const [r] = await pool.query<mysql.ResultSetHeader>(sql, params);
  return r.insertId;
}

/** Inserts `n` children of `parent` of one type and payload, in statements of 500. */
async function children(parent: number, n: number, type: string, payload: unknown): Promise<void> {
  for (let done = 0; done < n; done += 500) {
    const batch = Array.from({ length: Math.min(500, n - done) }, () => [type, JSON.stringify(payload), parent]);
    await pool.query('INSERT INTO jobs (type, payload, parent_id) VALUES ?', [batch]);
  }
}

async function status(id: number): Promise<string> {
  return String((await one('SELECT status FROM jobs WHERE id = ?', [id])).status);
}

async function until(id: number, wanted: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => (await status(id)) === wanted, { timeoutMs, message: `job ${id} never ${wanted}` });
}

function startReplicas(names: string[], extra: Record<string, string> = {}): Promise<DaemonProcess[]> {
  return spawnReplicas(db.url, pool, names, extra);
}

const stopAll = stopReplicas;

describe('workflows end to end (real daemon processes)', () => {
  before(async () => {
    db = await freshDatabase('workflows');
    pool = db.pool;
    await createEffectsTable(pool);
  });
  after(async () => db?.drop());

  it('three replicas, 3,000 children, kill -9 mid-run: the parent runs exactly once and its counters are exact', async () => {
    const replicas = await startReplicas(['w1', 'w2', 'w3'], { SLUICE_CONCURRENCY: '10', SLUICE_PREFETCH: '40' });
    try {
      const parent = await insert("INSERT INTO jobs (type, payload, status) VALUES ('record', '{}', 'waiting')");
      await children(parent, 3000, 'sleep', { ms: 15 });
      // Sealed while children already run and end: those count too.
      await pool.query('UPDATE jobs SET deps_total = 3000 WHERE id = ?', [parent]);
      await waitFor(async () => Number((await one('SELECT deps_done FROM jobs WHERE id = ?', [parent])).deps_done) >= 900, {
        timeoutMs: 60_000,
        message: 'a third of the children done',
      });
      const held = Number((await one("SELECT COUNT(*) AS n FROM jobs WHERE worker = 'w1' AND status IN ('queued', 'running')")).n);
      replicas[0]!.proc.kill('SIGKILL');
      await replicas[0]!.exited;
      // What the dead replica still held as running (short runs may all have ended).
      const orphaned = (await rows("SELECT id FROM jobs WHERE worker = 'w1' AND status = 'running'")).map((r) => Number(r.id));
      await until(parent, 'done', 120_000);

      const p = await one('SELECT deps_total, deps_done, deps_failed, started_at, attempts FROM jobs WHERE id = ?', [parent]);
      assert.deepEqual([Number(p.deps_total), Number(p.deps_done), Number(p.deps_failed)], [3000, 3000, 0]);
      const kids = await one(
        `SELECT COUNT(*) AS n, SUM(status = 'done') AS done, SUM(counted_as = 'done') AS counted, MAX(finished_at) AS last,
                SUM(attempts > 1) AS rerun, COUNT(DISTINCT worker) AS workers
         FROM jobs WHERE parent_id = ?`,
        [parent],
      );
      assert.deepEqual([Number(kids.n), Number(kids.done), Number(kids.counted)], [3000, 3000, 3000], 'every child counted once');
      assert.ok(String(p.started_at) >= String(kids.last), 'the parent started after its last child ended');
      assert.equal(Number(kids.workers), 3);
      assert.ok(held > 0, 'the killed replica held children when it died');
      if (orphaned.length > 0) {
        const rerun = await rows("SELECT id FROM jobs WHERE id IN (?) AND attempts >= 2 AND status = 'done' AND worker <> 'w1'", [orphaned]);
        assert.equal(rerun.length, orphaned.length, 'its running children were rescued and ran again elsewhere');
      }
      const effects = await rows("SELECT worker FROM effects WHERE job_id = ? AND what = 'done'", [parent]);
      assert.equal(effects.length, 1, 'the parent ran exactly once');
      assert.equal(Number(p.attempts), 1);
    } finally {
      await stopAll(replicas);
    }
  });

  it('ctx.enqueue with wait: the parent frees its slot (concurrency 1), waits, and runs again once, resumed, same attempt', async () => {
    const replicas = await startReplicas(['solo'], { SLUICE_CONCURRENCY: '1' });
    try {
      const parent = await insert("INSERT INTO jobs (type, payload) VALUES ('fanout', '{\"n\": 25}')");
      await until(parent, 'done', 30_000);
      const p = await one('SELECT result, attempts, deps_total, deps_done, suspended_at FROM jobs WHERE id = ?', [parent]);
      assert.deepEqual(p.result, { seen: 25, done: 25, failed: 0, ordered: true, attempt: 1, childCount: 25 });
      assert.deepEqual([Number(p.attempts), Number(p.deps_total), Number(p.deps_done)], [1, 25, 25]);
      assert.ok(p.suspended_at, 'suspended_at says when it parked');
      const what = (await rows('SELECT what FROM effects WHERE job_id = ? ORDER BY seq', [parent])).map((r) => r.what);
      assert.deepEqual(what, ['parked', 'resumed'], 'one run parked it, one run resumed it');
      const [{ n }] = (await rows("SELECT COUNT(*) AS n FROM jobs WHERE parent_id = ? AND status = 'done'", [parent])) as [{ n: number }];
      assert.equal(Number(n), 25, 'the children ran in the slot the parent freed');
    } finally {
      await stopAll(replicas);
    }
  });

  it("fail-fast: the first failed child fails its parent at once, naming it; running siblings are aborted, the rest cancelled", async () => {
    const replicas = await startReplicas(['ff'], { SLUICE_CONCURRENCY: '4' });
    try {
      const parent = await insert("INSERT INTO jobs (type, status, deps_total) VALUES ('record', 'waiting', 5)");
      await children(parent, 3, 'span', { ms: 60_000 });
      await waitFor(async () => (await rows("SELECT 1 FROM effects e JOIN jobs j ON j.id = e.job_id WHERE j.parent_id = ? AND e.what = 'start'", [parent])).length === 3, {
        message: 'three siblings running',
      });
      const later = await insert("INSERT INTO jobs (type, payload, parent_id, run_at) VALUES ('record', '{}', ?, NOW(3) + INTERVAL 1 HOUR)", [parent]);
      const bad = await insert("INSERT INTO jobs (type, payload, parent_id) VALUES ('refuse', '{}', ?)", [parent]);
      await until(parent, 'failed');
      const p = await one('SELECT error FROM jobs WHERE id = ?', [parent]);
      assert.equal(p.error, `child ${bad} (refuse) ended failed: refused: nothing to retry`);
      await waitFor(async () => Number((await one('SELECT deps_failed FROM jobs WHERE id = ?', [parent])).deps_failed) === 5, {
        message: 'every sibling ended and was counted',
      });
      const siblings = await rows('SELECT id, status, error FROM jobs WHERE parent_id = ? AND id <> ? ORDER BY id', [parent, bad]);
      assert.deepEqual(siblings.map((s) => s.status), ['cancelled', 'cancelled', 'cancelled', 'cancelled']);
      assert.equal(siblings.find((s) => Number(s.id) === later)?.error, 'cancelled before it started (cancel_requested_at was set)');
      const aborted = await rows("SELECT e.job_id FROM effects e JOIN jobs j ON j.id = e.job_id WHERE j.parent_id = ? AND e.what = 'aborted'", [parent]);
      assert.equal(aborted.length, 3, 'the running siblings were aborted through their signal');
      assert.equal((await rows("SELECT 1 FROM effects WHERE job_id = ? AND what = 'done'", [parent])).length, 0, 'the parent never ran');
    } finally {
      await stopAll(replicas);
    }
  });

  it('cancel cascades three levels: running grandchildren aborted through their signal, waiting and pending ones cancelled, counters exact', async () => {
    const replicas = await startReplicas(['c1', 'c2'], { SLUICE_CONCURRENCY: '4' });
    try {
      const root = await insert("INSERT INTO jobs (type, status, deps_total) VALUES ('record', 'waiting', 2)");
      const mid = await insert("INSERT INTO jobs (type, status, deps_total, parent_id) VALUES ('record', 'waiting', 3, ?)", [root]);
      const pendingUnderRoot = await insert("INSERT INTO jobs (type, parent_id, run_at) VALUES ('record', ?, NOW(3) + INTERVAL 1 HOUR)", [root]);
      await children(mid, 2, 'span', { ms: 60_000 });
      const pendingLeaf = await insert("INSERT INTO jobs (type, parent_id, run_at) VALUES ('record', ?, NOW(3) + INTERVAL 1 HOUR)", [mid]);
      await waitFor(async () => (await rows("SELECT 1 FROM effects e JOIN jobs j ON j.id = e.job_id WHERE j.parent_id = ? AND e.what = 'start'", [mid])).length === 2, {
        message: 'grandchildren running',
      });
      await pool.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?', [root]);
      const requested = Date.now();
      await until(root, 'cancelled');
      await waitFor(async () => (await rows("SELECT 1 FROM jobs WHERE (id IN (?, ?, ?) OR parent_id = ?) AND status <> 'cancelled'", [root, mid, pendingUnderRoot, mid])).length === 0, {
        message: 'the whole tree cancelled',
      });
      // SLUICE_POLL_MS is 50: each level follows the one above at once, not a poll later.
      assert.ok(Date.now() - requested < 3000, `the tree took ${Date.now() - requested} ms`);
      const aborted = await rows("SELECT e.job_id FROM effects e JOIN jobs j ON j.id = e.job_id WHERE j.parent_id = ? AND e.what = 'aborted'", [mid]);
      assert.equal(aborted.length, 2, 'both running grandchildren were aborted');
      assert.match(String((await one('SELECT error FROM jobs WHERE id = ?', [pendingLeaf])).error), /cancelled before it started/);
      await waitFor(async () => Number((await one('SELECT deps_failed FROM jobs WHERE id = ?', [mid])).deps_failed) === 3, { message: 'mid counted its three' });
      await waitFor(async () => Number((await one('SELECT deps_failed FROM jobs WHERE id = ?', [root])).deps_failed) === 2, { message: 'root counted its two' });
      assert.equal((await rows("SELECT 1 FROM effects WHERE job_id IN (?, ?) AND what = 'done'", [root, mid])).length, 0);
    } finally {
      await stopAll(replicas);
    }
  });

  it('children that end before the seal count; the seal releases the parent within a poll', async () => {
    const replicas = await startReplicas(['s1']);
    try {
      const parent = await insert("INSERT INTO jobs (type, payload, status) VALUES ('record', '{}', 'waiting')");
      await children(parent, 5, 'sleep', { ms: 0 });
      await waitFor(async () => Number((await one('SELECT deps_done FROM jobs WHERE id = ?', [parent])).deps_done) === 5, { message: 'children counted before the seal' });
      assert.equal(await status(parent), 'waiting', 'not sealed: not released');
      await pool.query('UPDATE jobs SET deps_total = 5 WHERE id = ?', [parent]);
      const sealedAt = Date.now();
      await until(parent, 'done');
      // SLUICE_POLL_MS is 50 in the tests.
      assert.ok(Date.now() - sealedAt < 2000, `released and run ${Date.now() - sealedAt} ms after the seal`);
    } finally {
      await stopAll(replicas);
    }
  });

  it("an http parent gets its children's outcomes in its request body", async () => {
    const bodies: unknown[] = [];
    const service: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(body));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"merged":true}');
      });
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
    const replicas = await startReplicas(['h1'], { SLUICE_HTTP_ALLOW: new URL(url).host });
    try {
      const parent = await insert("INSERT INTO jobs (type, payload, status, deps_total, on_child_failure) VALUES ('http', ?, 'waiting', 3, 'continue')", [
        JSON.stringify({ url: `${url}/merge`, body: { month: '2026-11' } }),
      ]);
      await children(parent, 2, 'sleep', { ms: 1 });
      const failing = await insert("INSERT INTO jobs (type, payload, parent_id) VALUES ('nope', '{}', ?)", [parent]);
      await until(parent, 'done');
      assert.equal(bodies.length, 1);
      const body = bodies[0] as { body: unknown; children: Array<{ id: number; type: string; status: string; result: unknown; error: string | null }>; children_truncated: boolean };
      assert.deepEqual(body.body, { month: '2026-11' });
      assert.equal(body.children_truncated, false);
      assert.deepEqual(body.children.map((c) => [c.type, c.status]), [['sleep', 'done'], ['sleep', 'done'], ['nope', 'failed']]);
      assert.deepEqual(body.children[0]?.result, { slept: 1 });
      assert.equal(body.children[2]?.id, failing);
      assert.match(body.children[2]?.error ?? '', /no handler for job type "nope"/);
      assert.deepEqual((await one('SELECT result FROM jobs WHERE id = ?', [parent])).result, { merged: true });
    } finally {
      await stopAll(replicas);
      service.close();
    }
  });
});
