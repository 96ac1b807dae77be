import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { spawnDaemon, testEnv, waitForWorker, type DaemonProcess } from '../helpers/daemon.js';
import { type FreshDatabase, freshDatabase, queriesOn, waitFor } from '../helpers/database.js';
import { createEffectsTable } from '../helpers/factory.js';

// Three real daemon processes (node dist/main.js) evaluate the same schedule rows.

let db: FreshDatabase;
let pool: mysql.Pool;
let replicas: DaemonProcess[] = [];

const { rows } = queriesOn(() => pool);

async function startReplicas(names = ['s1', 's2', 's3']): Promise<void> {
  replicas = names.map((name) => spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: name, SLUICE_CONCURRENCY: '4' })));
  for (const name of names) await waitForWorker(pool, name, 30_000);
}

async function stopReplicas(): Promise<void> {
  for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.exited));
  replicas = [];
}

async function insertSchedule(cols: Record<string, unknown>): Promise<number> {
  const names = Object.keys(cols);
  const [r] = await pool.query<mysql.ResultSetHeader>(
    `INSERT INTO job_schedules (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
    names.map((n) => (typeof cols[n] === 'object' && cols[n] !== null ? JSON.stringify(cols[n]) : cols[n])),
  );
  return r.insertId;
}

/** The ticks (UTC text) made for a schedule, oldest first. */
async function ticksOf(id: number): Promise<string[]> {
  return (await rows('SELECT scheduled_for FROM jobs WHERE schedule_id = ? ORDER BY scheduled_for', [id])).map((r) => String(r.scheduled_for));
}

/** Waits until a schedule has at least `n` jobs and returns its ticks. */
async function waitForTicks(id: number, n: number, timeoutMs = 30_000): Promise<string[]> {
  return waitFor(async () => {
    const ticks = await ticksOf(id);
    return ticks.length >= n ? ticks : undefined;
  }, { timeoutMs, message: `schedule ${id} never reached ${n} jobs` });
}

const ms = (tick: string): number => Date.parse(`${tick.replace(' ', 'T')}Z`);

describe('recurring schedules on three replicas (real child processes)', () => {
  before(async () => {
    db = await freshDatabase('schedules');
    pool = db.pool;
    await createEffectsTable(pool);
    await startReplicas();
  });
  after(async () => {
    await stopReplicas();
    await db?.drop();
  });

  it('a 2-second schedule makes exactly one job per tick: no duplicate, no gap, each run once', async () => {
    const id = await insertSchedule({ name: 'every-2s', cron: '*/2 * * * * *', type: 'record', catch_up: 'all' });
    const ticks = await waitForTicks(id, 8, 60_000);
    assert.equal(new Set(ticks).size, ticks.length, 'no scheduled_for twice');
    for (const t of ticks) assert.match(t, /:\d[02468]\.000$/, `ticks fall on even seconds: ${t}`);
    for (let i = 1; i < ticks.length; i++) assert.equal(ms(ticks[i] as string) - ms(ticks[i - 1] as string), 2000, `no tick lost or doubled: ${ticks.join(', ')}`);
    await waitFor(async () => (await rows("SELECT COUNT(*) AS n FROM jobs WHERE schedule_id = ? AND status = 'done'", [id]))[0]?.n >= 8, { message: 'jobs done' });
    const twice = await rows("SELECT job_id FROM effects WHERE what = 'done' GROUP BY job_id HAVING COUNT(*) > 1");
    assert.deepEqual(twice, [], 'no job ran twice');
    const [row] = await rows('SELECT last_run_at, last_job_id, last_error FROM job_schedules WHERE id = ?', [id]);
    assert.equal(row?.last_error, null);
    assert.ok(row?.last_job_id, 'last_job_id kept');
    await pool.query('UPDATE job_schedules SET paused = TRUE WHERE id = ?', [id]);
  });

  it('pause stops the ticks, an edit of cron takes effect from the next tick, an invalid row is set aside', async () => {
    const witness = await insertSchedule({ name: 'witness', cron: '* * * * * *', type: 'sleep', payload: { ms: 0 } });
    const id = await insertSchedule({ name: 'editable', cron: '* * * * * *', type: 'sleep', payload: { ms: 0 } });
    await waitForTicks(id, 2);

    await pool.query('UPDATE job_schedules SET paused = TRUE WHERE id = ?', [id]);
    await waitFor(async () => (await rows('SELECT next_run_at FROM job_schedules WHERE id = ? AND next_run_at IS NULL', [id])).length === 1, { message: 'pause seen' });
    const pausedAt = (await ticksOf(id)).length;
    // Time passes with the replicas at work: the witness ticks three more times.
    const seen = (await ticksOf(witness)).length;
    await waitForTicks(witness, seen + 3);
    assert.equal((await ticksOf(id)).length, pausedAt, 'no tick while paused');

    await pool.query("UPDATE job_schedules SET cron = '*/3 * * * * *', paused = FALSE WHERE id = ?", [id]);
    const after = await waitForTicks(id, pausedAt + 2);
    for (const t of after.slice(pausedAt)) assert.equal(ms(t) % 3000, 0, `the new cron rules the next ticks: ${t}`);

    const bad = await insertSchedule({ name: 'broken', cron: '*/2 * * *', timezone: 'UTC', type: 'sleep' });
    const badZone = await insertSchedule({ name: 'broken-zone', cron: '* * * * *', timezone: 'Europe/Atlantis', type: 'sleep' });
    await waitFor(async () => (await rows('SELECT id FROM job_schedules WHERE id IN (?, ?) AND last_error IS NOT NULL', [bad, badZone])).length === 2, { message: 'last_error set' });
    const [e1] = await rows('SELECT last_error, next_run_at FROM job_schedules WHERE id = ?', [bad]);
    assert.match(String(e1?.last_error), /invalid cron "\*\/2 \* \* \*"/);
    assert.equal(e1?.next_run_at, null);
    const witnessed = (await ticksOf(witness)).length;
    await waitForTicks(witness, witnessed + 2);
    for (const r of replicas) assert.equal(r.proc.exitCode, null, `replica alive: ${r.output()}`);
    await pool.query('UPDATE job_schedules SET paused = TRUE');
  });

  it("overlap 'skip': a tick while the previous job runs is skipped, never two at once", async () => {
    const id = await insertSchedule({ name: 'long', cron: '* * * * * *', type: 'record', payload: { ms: 2500 }, overlap: 'skip' });
    await waitFor(async () => (await rows("SELECT id FROM jobs WHERE schedule_id = ? AND status = 'done'", [id])).length >= 3, { timeoutMs: 40_000, message: '3 long jobs done' });
    await pool.query('UPDATE job_schedules SET paused = TRUE WHERE id = ?', [id]);
    const jobs = await rows("SELECT id, created_at, finished_at FROM jobs WHERE schedule_id = ? AND status = 'done' ORDER BY id", [id]);
    for (let i = 1; i < jobs.length; i++) {
      assert.ok(String(jobs[i]?.created_at) >= String(jobs[i - 1]?.finished_at), `job ${jobs[i]?.id} made before ${jobs[i - 1]?.id} ended: ${JSON.stringify(jobs)}`);
    }
    const [m] = await rows('SELECT MAX(TIMESTAMPDIFF(MICROSECOND, a.created_at, b.created_at)) AS gap FROM jobs a JOIN jobs b ON b.id = (SELECT MIN(id) FROM jobs WHERE schedule_id = a.schedule_id AND id > a.id) WHERE a.schedule_id = ?', [id]);
    assert.ok(Number(m?.gap) >= 2_000_000, 'ticks were skipped while a job ran');
  });

  it('catch-up after every replica was stopped: latest makes one job, none none, all one per missed tick', async () => {
    // Hourly at the minute half an hour from now, so the newest missed tick is ~30 min old.
    const [clock] = await rows('SELECT MINUTE(UTC_TIMESTAMP()) AS m');
    const cron = `${(Number(clock?.m) + 30) % 60} * * * *`;
    const ids = {
      latest: await insertSchedule({ name: 'cu-latest', cron, type: 'sleep', catch_up: 'latest' }),
      none: await insertSchedule({ name: 'cu-none', cron, type: 'sleep', catch_up: 'none' }),
      all: await insertSchedule({ name: 'cu-all', cron, type: 'sleep', catch_up: 'all' }),
    };
    await waitFor(async () => (await rows('SELECT id FROM job_schedules WHERE id IN (?) AND next_run_at IS NOT NULL', [Object.values(ids)])).length === 3, { message: 'first ticks computed' });
    await stopReplicas();
    // As if the cluster had been down 160 minutes: three ticks missed (-30, -90, -150 min).
    await pool.query('UPDATE job_schedules SET next_run_at = UTC_TIMESTAMP(3) - INTERVAL 160 MINUTE WHERE id IN (?)', [Object.values(ids)]);
    await startReplicas(['c1', 'c2', 'c3']);
    await waitFor(async () => (await rows('SELECT id FROM job_schedules WHERE id IN (?) AND next_run_at > UTC_TIMESTAMP(3)', [Object.values(ids)])).length === 3, { message: 'caught up' });
    assert.equal((await ticksOf(ids.latest)).length, 1);
    assert.equal((await ticksOf(ids.none)).length, 0);
    assert.equal((await ticksOf(ids.all)).length, 4, 'the mark itself and the 3 missed ticks');
  });
});
