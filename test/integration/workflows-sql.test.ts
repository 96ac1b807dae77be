// Workflow rules against the real database, through the daemon's own pieces (state
// writer, sweeps, the leader's workflow publisher) without daemon processes: each rule of
// DESIGN.md's Workflows section that a whole daemon would only make slower to check.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { StateWriter } from '../../src/consumers/state-writer.js';
import { Database, type Executor } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import type { Outcome } from '../../src/db/queries/jobs-outcome.js';
import { jobsCancelOverdue, jobsRescueOf } from '../../src/db/queries/jobs-rescue.js';
import { jobsDelete, jobsSelectExpired } from '../../src/db/queries/retention.js';
import { jobsCascadeCancel } from '../../src/db/queries/workflows-cascades.js';
import { jobsSelectChildren } from '../../src/db/queries/workflows-children.js';
import { jobsCountEndedChildren, jobsSelectStaleParents } from '../../src/db/queries/workflows-reconcile.js';
import { jobsSelectTodo, jobsSelectWaitExpired, workflowsPeek } from '../../src/db/queries/workflows-todo.js';
import { SluiceEvents, type SluiceEventMap } from '../../src/events.js';
import type { Leader } from '../../src/leader/leader.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { WorkflowPublisher } from '../../src/publishers/workflow-publisher.js';
import { childrenOf } from '../../src/workflows/children.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;
let metrics: Metrics;
const events = new SluiceEvents();
const seen: Array<{ event: keyof SluiceEventMap; payload: unknown }> = [];
for (const event of ['workflow:released', 'workflow:failed-fast', 'workflow:waiting-ended', 'workflow:cascaded', 'workflow:reconciled'] as const) {
  events.on(event, (payload) => seen.push({ event, payload }));
}
const leader: Leader = { start: () => Promise.resolve(), stop: () => Promise.resolve(), isLeader: () => true, onChange: () => undefined };

interface Row {
  id: number;
  status: string;
  deps_total: number | null;
  deps_done: number;
  deps_failed: number;
  counted_as: string | null;
  workflow_todo: number | null;
  error: string | null;
  paused: number;
  cancel_requested_at: string | null;
  parent_id: number | null;
}

async function row(id: number): Promise<Row> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>(
    `SELECT id, status, deps_total, deps_done, deps_failed, counted_as, workflow_todo, error, paused, cancel_requested_at, parent_id
     FROM jobs WHERE id = ?`,
    [id],
  );
  return rows[0] as Row;
}

/** Inserts one row with the given columns (SQL values as parameters); returns its id. */
async function insert(cols: Record<string, unknown>): Promise<number> {
  const names = Object.keys(cols);
  const [r] = await pool.query<mysql.ResultSetHeader>(
    `INSERT INTO jobs (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
    names.map((n) => cols[n]),
  );
  return r.insertId;
}

/** A child held as running by `worker` (attempt 1 of 3 unless told). */
function runningChild(parent: number, extra: Record<string, unknown> = {}): Promise<number> {
  return insert({ type: 'sleep', status: 'running', worker: 'w1', attempts: 1, started_at: new Date(), parent_id: parent, ...extra });
}

function done(id: number, attempts = 1): Outcome {
  return { id, attempts, from: 'running', status: 'done', result: `{"child":${id}}` };
}

function writer(): StateWriter {
  return new StateWriter({ db, worker: 'w1', logger: createLogger('silent', {}), events, finishDelayMs: 1 });
}

function publisher(opts: Partial<ConstructorParameters<typeof WorkflowPublisher>[0]> = {}): WorkflowPublisher {
  return new WorkflowPublisher({ db, leader, events, pollMs: 50, ...opts });
}

/** Statements sent since `before`, by name (sluice_db_statements_total). */
async function statements(): Promise<Map<string, number>> {
  const metric = await metrics.dbStatements.get();
  return new Map(metric.values.map((v) => [String(v.labels.statement), v.value]));
}

function delta(a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) if (v !== (a.get(k) ?? 0)) out[k] = v - (a.get(k) ?? 0);
  return out;
}

describe('workflows in SQL: counting, release, fail-fast, ends of waiting jobs, cascades', () => {
  before(async () => {
    fresh = await freshDatabase('workflows_sql');
    pool = fresh.pool;
    metrics = new Metrics();
    db = new Database({ url: fresh.url, connectionLimit: 4, onStatement: (statement) => metrics.dbStatements.inc({ statement }) });
    await migrate(db);
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
  });

  it('a plain job still costs one statement; children are counted with their own write, once, and the last releases its parent', async () => {
    const w = writer();
    try {
      const plain = await insert({ type: 'sleep', status: 'running', worker: 'w1', attempts: 1 });
      let before = await statements();
      await w.finish(done(plain));
      assert.deepEqual(delta(before, await statements()), { jobsFinish: 1 }, 'no transaction, no extra statement');

      const parent = await insert({ type: 'merge', status: 'waiting', deps_total: 3 });
      const [a, b, c] = [await runningChild(parent), await runningChild(parent), await runningChild(parent)];
      before = await statements();
      await Promise.all([w.finish(done(a)), w.finish(done(b)), w.finish({ ...done(c), attempts: 7 })]);
      const used = delta(before, await statements());
      assert.equal(used.jobsFinish, 2, 'the plain attempt, then the children in the transaction');
      assert.equal(used.jobsCountChildren, 1, 'one counter update for the batch: increments summed per parent');
      let p = await row(parent);
      assert.deepEqual([p.status, p.deps_done, p.deps_failed], ['waiting', 2, 0], 'the late answer (attempt 7) counted nothing');
      assert.equal((await row(c)).status, 'running');

      // A retried attempt counts nothing; only the final state does.
      await w.finish({ id: c, attempts: 1, from: 'running', status: 'pending', error: 'boom', delayMs: 0 });
      assert.deepEqual([(await row(parent)).deps_done, (await row(c)).counted_as], [2, null]);
      await pool.query("UPDATE jobs SET status = 'running', attempts = 2 WHERE id = ?", [c]);
      await w.finish(done(c, 2));
      p = await row(parent);
      assert.deepEqual([p.status, p.deps_done, p.deps_failed, p.workflow_todo], ['pending', 3, 0, null], 'released by the transaction of the last child');
      assert.deepEqual((await Promise.all([a, b, c].map(row))).map((r) => r.counted_as), ['done', 'done', 'done']);
      assert.ok(seen.some((s) => s.event === 'workflow:released' && (s.payload as { by: string }).by === 'child'));
    } finally {
      w.close();
    }
  });

  it("a failed child fails its 'fail' parent at once, naming it; that end counts into a 'continue' grandparent, which runs", async () => {
    const w = writer();
    try {
      const grand = await insert({ type: 'report', status: 'waiting', deps_total: 1, on_child_failure: 'continue' });
      const parent = await insert({ type: 'merge', status: 'waiting', deps_total: 3, parent_id: grand });
      const bad = await runningChild(parent, { type: 'render' });
      const sibling = await insert({ type: 'sleep', parent_id: parent });
      await w.finish({ id: bad, attempts: 1, from: 'running', status: 'failed', error: 'HTTP 500 from POST render.svc:80' });
      const p = await row(parent);
      assert.equal(p.status, 'failed');
      assert.equal(p.error, `child ${bad} (render) ended failed: HTTP 500 from POST render.svc:80`);
      assert.ok(p.cancel_requested_at, 'its cancel request is what cancels the siblings');
      assert.equal(p.workflow_todo, 5, 'the leader pushes that cancel to the children next');
      const g = await row(grand);
      assert.deepEqual([g.status, g.deps_done, g.deps_failed], ['pending', 0, 1], "policy 'continue': released once every child ended");
      assert.deepEqual(seen.filter((s) => s.event === 'workflow:failed-fast').at(-1)?.payload, { parentId: parent, childId: bad });

      // The leader cancels the sibling that had not started, and counts it.
      const pub = publisher();
      await pub.runOnce();
      await pub.runOnce();
      const s = await row(sibling);
      assert.deepEqual([s.status, s.counted_as], ['cancelled', 'failed']);
      assert.deepEqual([(await row(parent)).deps_failed, (await row(parent)).workflow_todo], [2, null]);
    } finally {
      w.close();
    }
  });

  it('a child that ends again (retried by hand) moves its count instead of adding one', async () => {
    const w = writer();
    try {
      const parent = await insert({ type: 'merge', status: 'waiting', deps_total: 2, on_child_failure: 'continue' });
      const c = await runningChild(parent);
      await w.finish({ id: c, attempts: 1, from: 'running', status: 'failed', error: 'boom' });
      assert.deepEqual([(await row(parent)).deps_done, (await row(parent)).deps_failed], [0, 1]);
      await pool.query("UPDATE jobs SET status = 'running', attempts = 1, worker = 'w1', finished_at = NULL WHERE id = ?", [c]);
      await w.finish(done(c));
      assert.deepEqual([(await row(parent)).deps_done, (await row(parent)).deps_failed, (await row(c)).counted_as], [1, 0, 'done']);
    } finally {
      w.close();
    }
  });

  it("the dead-replica rescue and the overdue backstop count the children they end; a rescued child with attempts left counts nothing", async () => {
    const parent = await insert({ type: 'merge', status: 'waiting', deps_total: 3, on_child_failure: 'continue' });
    const last = await runningChild(parent, { worker: 'dead-1', attempts: 3, max_attempts: 3 });
    const retried = await runningChild(parent, { worker: 'dead-1', attempts: 1, max_attempts: 3 });
    assert.deepEqual(await jobsRescueOf(db, ['dead-1'], 'worker died'), { requeued: 0, rescued: 2 });
    assert.deepEqual([(await row(last)).status, (await row(last)).counted_as, (await row(retried)).status, (await row(retried)).counted_as], ['failed', 'failed', 'pending', null]);
    assert.deepEqual([(await row(parent)).deps_done, (await row(parent)).deps_failed], [0, 1]);

    const overdue = await runningChild(parent, { worker: 'stuck', timeout_ms: 1000, started_at: new Date(Date.now() - 3_600_000) });
    assert.equal(await jobsCancelOverdue(db, { defaultTimeoutMs: 900_000, graceMs: 1000 }), 1);
    assert.deepEqual([(await row(overdue)).status, (await row(parent)).deps_failed], ['cancelled', 2]);
    assert.equal(await jobsCancelOverdue(db, { defaultTimeoutMs: 900_000, graceMs: 1000 }), 0, 'nothing left: one read, no transaction');
  });

  it('the leader releases a parent whose seal came after its children, and keeps an approval given early', async () => {
    const pub = publisher();
    const w = writer();
    try {
      const parent = await insert({ type: 'merge', status: 'waiting' });
      const kids = [await runningChild(parent), await runningChild(parent)];
      for (const k of kids) await w.finish(done(k));
      const unsealed = await row(parent);
      assert.deepEqual([unsealed.status, unsealed.deps_done, unsealed.workflow_todo], ['waiting', 2, null], 'children that end before the seal count; not sealed, not released');
      await pub.runOnce();
      assert.equal((await row(parent)).status, 'waiting');
      await pool.query('UPDATE jobs SET deps_total = 2 WHERE id = ?', [parent]);
      assert.equal(await workflowsPeek(db), true);
      await pub.runOnce();
      assert.equal((await row(parent)).status, 'pending');

      // Approved at insert, while its child still runs: kept, and it runs once both hold.
      const deploy = await insert({ type: 'deploy', status: 'waiting', approval_required: true, approved_at: new Date(), approved_by: 'ana', deps_total: 1 });
      const build = await runningChild(deploy);
      await pub.runOnce();
      assert.equal((await row(deploy)).status, 'waiting');
      await w.finish(done(build));
      assert.equal((await row(deploy)).status, 'pending', 'released with the last child: the approval was kept');

      // Approval only: waits for nobody but a person.
      const gate = await insert({ type: 'deploy', status: 'waiting', approval_required: true, deps_total: 0 });
      await pub.runOnce();
      assert.equal((await row(gate)).status, 'waiting');
      await pool.query("UPDATE jobs SET approved_at = NOW(3), approved_by = 'ana' WHERE id = ?", [gate]);
      await pub.runOnce();
      assert.equal((await row(gate)).status, 'pending');
    } finally {
      w.close();
    }
  });

  it('a job still waiting at its wait_deadline fails with "wait deadline passed" and is counted into its parent', async () => {
    const parent = await insert({ type: 'report', status: 'waiting', deps_total: 1, on_child_failure: 'continue' });
    const gate = await insert({ type: 'deploy', status: 'waiting', approval_required: true, deps_total: 0, parent_id: parent, wait_deadline: new Date(Date.now() - 1000) });
    const later = await insert({ type: 'deploy', status: 'waiting', approval_required: true, deps_total: 0, wait_deadline: new Date(Date.now() + 3_600_000) });
    assert.deepEqual(await jobsSelectWaitExpired(db, 10), [gate]);
    await publisher().runOnce();
    const g = await row(gate);
    assert.deepEqual([g.status, g.error, g.counted_as], ['failed', 'wait deadline passed', 'failed']);
    assert.deepEqual([(await row(parent)).status, (await row(parent)).deps_failed], ['pending', 1]);
    assert.equal((await row(later)).status, 'waiting');
    assert.ok(seen.some((s) => s.event === 'workflow:waiting-ended' && (s.payload as { reason: string }).reason === 'deadline'));
  });

  it('cancel cascades down three levels: waiting and pending descendants cancelled and counted, running ones get a cancel request', async () => {
    const root = await insert({ type: 'batch', status: 'waiting', deps_total: 2 });
    const mid = await insert({ type: 'merge', status: 'waiting', deps_total: 2, parent_id: root });
    const leafPending = await insert({ type: 'sleep', parent_id: mid });
    const leafRunning = await runningChild(mid);
    const other = await insert({ type: 'sleep', parent_id: root });
    const unrelated = await insert({ type: 'sleep' });
    await pool.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?', [root]);
    const pub = publisher();
    for (let i = 0; i < 4; i++) await pub.runOnce();
    const r = await row(root);
    assert.equal(r.status, 'cancelled');
    assert.equal((await row(mid)).status, 'cancelled');
    assert.deepEqual([(await row(leafPending)).status, (await row(other)).status], ['cancelled', 'cancelled']);
    const running = await row(leafRunning);
    assert.equal(running.status, 'running', 'its own replica aborts it through its signal');
    assert.ok(running.cancel_requested_at);
    assert.equal((await row(unrelated)).cancel_requested_at, null);
    // Counters: mid saw its pending leaf cancelled; root saw mid and other.
    assert.deepEqual([(await row(mid)).deps_failed, r.deps_failed], [1, 2]);
    assert.deepEqual(await jobsSelectTodo(db, 'cascadeCancel', 10), [], 'every cancel reached the children of its job');
  });

  it('pause cascades to descendants that have not started, through running ones, and resume clears it', async () => {
    const root = await insert({ type: 'batch', status: 'waiting', deps_total: 3 });
    const waitingChild = await insert({ type: 'merge', status: 'waiting', deps_total: 1, parent_id: root });
    const grandchild = await insert({ type: 'sleep', parent_id: waitingChild });
    const runningKid = await runningChild(root);
    const underRunning = await insert({ type: 'sleep', parent_id: runningKid });
    const pendingKid = await insert({ type: 'sleep', parent_id: root });
    const pub = publisher();
    await pool.query('UPDATE jobs SET paused = TRUE WHERE id = ?', [root]);
    for (let i = 0; i < 3; i++) await pub.runOnce();
    const paused = async () => (await Promise.all([waitingChild, grandchild, runningKid, underRunning, pendingKid].map(row))).map((r) => Number(r.paused));
    assert.deepEqual(await paused(), [1, 1, 0, 1, 1], 'the running child keeps its paused; its own child is paused');
    assert.deepEqual(await jobsSelectTodo(db, 'cascadePause', 10), []);
    await pool.query('UPDATE jobs SET paused = FALSE WHERE id = ?', [root]);
    for (let i = 0; i < 3; i++) await pub.runOnce();
    assert.deepEqual(await paused(), [0, 0, 0, 0, 0]);
  });

  it("the leader fails fast a parent that parked after its child failed, naming the first failed child", async () => {
    const parent = await insert({ type: 'merge', status: 'running', worker: 'w1', attempts: 1 });
    const ok = await insert({ type: 'sleep', status: 'done', parent_id: parent, counted_as: 'done' });
    const bad = await insert({ type: 'render', status: 'cancelled', parent_id: parent, error: 'timed out after 5 ms', counted_as: 'failed' });
    await pool.query("UPDATE jobs SET status = 'waiting', deps_total = 3, deps_done = 1, deps_failed = 1 WHERE id = ?", [parent]);
    assert.deepEqual((await jobsSelectTodo(db, 'failFast', 10)).includes(parent), true);
    await publisher().runOnce();
    const p = await row(parent);
    assert.deepEqual([p.status, p.error], ['failed', `child ${bad} (render) ended cancelled: timed out after 5 ms`]);
    assert.ok(ok > 0);
  });

  it('the reconciler rewrites the counters of a parent that waited long with drifted counts', async () => {
    const parent = await insert({ type: 'merge', status: 'waiting', deps_total: 3, on_child_failure: 'continue' });
    for (const status of ['done', 'done', 'failed']) await insert({ type: 'sleep', status, parent_id: parent });
    // Ended by hand, never counted; and the parent untouched for an hour.
    await pool.query('UPDATE jobs SET updated_at = NOW(3) - INTERVAL 1 HOUR WHERE id = ?', [parent]);
    assert.deepEqual((await jobsSelectStaleParents(db, { idleMs: 300_000, afterId: 0, limit: 10 })).map((s) => s.id).includes(parent), true);
    const pub = publisher({ reconcileEveryMs: 0, staleAfterMs: 1000 });
    await pub.runOnce();
    const p = await row(parent);
    assert.deepEqual([p.deps_done, p.deps_failed], [2, 1]);
    assert.deepEqual(await jobsCountEndedChildren(db, parent), { done: 2, failed: 1 });
    assert.ok(seen.some((s) => s.event === 'workflow:reconciled' && (s.payload as { parentId: number }).parentId === parent));
    await pub.runOnce();
    assert.equal((await row(parent)).status, 'pending', 'fixed counters let the release happen');
  });

  it('ctx.children() pages by key in id order; retention never deletes a child whose parent has not ended', async () => {
    const parent = await insert({ type: 'merge', status: 'waiting', deps_total: 5 });
    const kids: number[] = [];
    for (let i = 0; i < 5; i++) kids.push(await insert({ type: 'sleep', status: 'done', parent_id: parent, result: JSON.stringify({ i }), finished_at: new Date(Date.now() - 10 * 3_600_000) }));
    const pages: number[][] = [];
    let after = 0;
    for (;;) {
      const page = await jobsSelectChildren(db, { parentId: parent, afterId: after, limit: 2 });
      if (page.length === 0) break;
      pages.push(page.map((c) => c.id));
      after = page.at(-1)!.id;
    }
    assert.deepEqual(pages, [kids.slice(0, 2), kids.slice(2, 4), kids.slice(4)]);
    const all = [];
    for await (const c of childrenOf(db, parent, 2)) all.push(c);
    assert.deepEqual(all.map((c) => c.result), [0, 1, 2, 3, 4].map((i) => ({ i })));

    const expired = (await jobsSelectExpired(db, { hours: 1, limit: 1000 })).map((r) => r.id);
    for (const k of kids) assert.equal(expired.includes(k), false, 'kept while the parent waits');
    assert.equal(await jobsDelete(db, kids), 0, 'the delete checks again');
    await pool.query("UPDATE jobs SET status = 'done', finished_at = NOW(3) WHERE id = ?", [parent]);
    const now = (await jobsSelectExpired(db, { hours: 1, limit: 1000 })).map((r) => r.id);
    for (const k of kids) assert.ok(now.includes(k), 'deletable once the parent ended');
    assert.equal(await jobsDelete(db, now), now.length);
    assert.equal((await jobsSelectChildren(db, { parentId: parent, afterId: 0, limit: 10 })).length, 0);
  });

  it('job_stats shows waiting jobs', async () => {
    const [rows] = await pool.query<mysql.RowDataPacket[]>("SELECT jobs FROM job_stats WHERE status = 'waiting' AND queue = 'default'");
    assert.ok(Number(rows[0]?.jobs) > 0);
  });

  it('every workflow statement is index-served (EXPLAIN)', async () => {
    await pool.query("INSERT INTO jobs (type, status, finished_at) SELECT 'sleep', 'done', NOW(3) FROM seq_1_to_5000");
    await pool.query('ANALYZE TABLE jobs');
    const plans: Array<{ what: string; plan: Array<Record<string, unknown>> }> = [];
    const x: Executor = {
      run: async <T>(what: string, sql: string, params: unknown[] = []): Promise<T> => {
        if (/^\s*(SELECT|UPDATE|DELETE)/i.test(sql)) plans.push({ what, plan: (await pool.query<mysql.RowDataPacket[]>(`EXPLAIN ${sql}`, params))[0] });
        return [] as unknown as T;
      },
    };
    await workflowsPeek(x);
    await jobsSelectTodo(x, 'release', 500);
    await jobsSelectWaitExpired(x, 500);
    await jobsCascadeCancel(x, [1, 2, 3], 1000);
    await jobsSelectChildren(x, { parentId: 1, afterId: 0, limit: 100 });
    await jobsCountEndedChildren(x, 1);
    for (const { what, plan } of plans) {
      for (const step of plan) {
        if (step.table !== 'jobs' && step.table !== 'wf') continue;
        assert.notEqual(step.type, 'ALL', `${what}: full scan ${JSON.stringify(step)}`);
        assert.doesNotMatch(typeof step.Extra === 'string' ? step.Extra : '', /filesort|temporary/, `${what}: ${JSON.stringify(step)}`);
      }
    }
    const keys = plans.map(({ what, plan }) => [what, plan.filter((s) => s.table === 'jobs' || s.table === 'wf').map((s) => String(s.key)).sort()]);
    assert.deepEqual(keys, [
      ['workflowsPeek', ['jobs_wait_expiry', 'jobs_workflow_todo']],
      ['jobsSelectTodo', ['jobs_workflow_todo']],
      ['jobsSelectWaitExpired', ['jobs_wait_expiry']],
      ['jobsCascadeCancel', ['jobs_parent']],
      ['jobsSelectChildren', ['jobs_parent']],
      ['jobsCountEndedChildren', ['jobs_parent']],
    ]);
  });
});
