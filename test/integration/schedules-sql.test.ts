import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { Database, type Executor } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { jobsProbe, workersHeartbeatIfQuiet } from '../../src/db/queries/probe.js';
import { schedulesAdvance, schedulesLockDue, schedulesPeek } from '../../src/db/queries/schedules.js';
import { inTransaction } from '../../src/db/transaction.js';
import { SluiceEvents, type SluiceEventMap } from '../../src/events.js';
import { SchedulesPublisher } from '../../src/publishers/schedules-publisher.js';
import { type FreshDatabase, freshDatabase, POOL_OPTIONS, queriesOn } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let db: Database;
let events: SluiceEvents;
let ticked: Array<SluiceEventMap['schedule:ticked']>;
let invalid: Array<SluiceEventMap['schedule:invalid']>;

const { rows } = queriesOn(() => pool);

async function schedule(name: string): Promise<mysql.RowDataPacket> {
  const [row] = await rows('SELECT * FROM job_schedules WHERE name = ?', [name]);
  assert.ok(row, `schedule ${name} exists`);
  return row;
}

function publisher(on: Database = db): SchedulesPublisher {
  return new SchedulesPublisher({ db: on, events, pollMs: 1000 });
}

/** Inserts a schedule as a user would, and lets the publisher compute its first tick. */
async function insertSchedule(cols: Record<string, unknown>): Promise<number> {
  const names = Object.keys(cols);
  const [r] = await pool.query<mysql.ResultSetHeader>(
    `INSERT INTO job_schedules (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
    names.map((n) => cols[n]),
  );
  await publisher().computeNext();
  return r.insertId;
}

/** Moves a schedule's high-water mark into the past (as if every replica had been down). */
async function backdate(id: number, seconds: number): Promise<void> {
  await pool.query('UPDATE job_schedules SET next_run_at = UTC_TIMESTAMP(3) - INTERVAL ? SECOND WHERE id = ?', [seconds, id]);
}

describe('schedules: SQL, compare-and-set, catch-up (in process)', () => {
  before(async () => {
    fresh = await freshDatabase('schedules_sql');
    pool = fresh.pool;
    db = new Database({ url: fresh.url });
    await migrate(db);
  });
  after(async () => {
    await db?.end();
    await fresh?.drop();
  });
  beforeEach(async () => {
    await pool.query('DELETE FROM jobs');
    await pool.query('DELETE FROM job_schedules');
    events = new SluiceEvents();
    ticked = [];
    invalid = [];
    events.on('schedule:ticked', (e) => ticked.push(e));
    events.on('schedule:invalid', (e) => invalid.push(e));
  });

  it('affected rows are pinned: mysql2 sets FOUND_ROWS, and the CAS answers the same with and without it', async () => {
    const id = await insertSchedule({ name: 'cas', cron: '* * * * *', type: 'sleep' });
    await backdate(id, 5);
    const plain = await mysql.createConnection({ uri: fresh.url, ...POOL_OPTIONS, flags: ['-FOUND_ROWS'] });
    const found = await mysql.createConnection({ uri: fresh.url, ...POOL_OPTIONS });
    try {
      // The trap (Oban #1250): a matched row left unchanged is 1 with FOUND_ROWS, 0 without.
      const same = 'UPDATE job_schedules SET cron = cron WHERE id = ?';
      assert.equal((await found.query<mysql.ResultSetHeader>(same, [id]))[0].affectedRows, 1, 'mysql2 default: rows matched');
      assert.equal((await plain.query<mysql.ResultSetHeader>(same, [id]))[0].affectedRows, 0, 'without FOUND_ROWS: rows changed');
      for (const conn of [found, plain]) {
        const [[row]] = await conn.query<mysql.RowDataPacket[]>('SELECT next_run_at FROM job_schedules WHERE id = ?', [id]);
        const from = String(row?.next_run_at);
        const tx: Executor = { run: async <T>(_n: string, sql: string, p: unknown[] = []) => (await conn.query(sql, p))[0] as T };
        const advance = { id, from, next: '2999-01-01 00:00:00.000', lastTick: null, error: null };
        assert.equal(await schedulesAdvance(tx, advance), 1, 'the CAS wins once');
        assert.equal(await schedulesAdvance(tx, advance), 0, 'and only once');
        await conn.query('UPDATE job_schedules SET next_run_at = ? WHERE id = ?', [from, id]);
      }
    } finally {
      await plain.end();
      await found.end();
    }
  });

  it('a new row gets its first tick; an edit recomputes it; pause clears it and resume starts from the next tick', async () => {
    const id = await insertSchedule({ name: 'edit', cron: '0 0 1 1 *', timezone: 'Europe/Berlin', type: 'sleep' });
    let row = await schedule('edit');
    assert.match(String(row.next_run_at), /^\d{4}-12-31 23:00:00\.000$/, 'midnight of 1 January in Berlin, as UTC');
    assert.equal(row.needs_compute, null);

    await pool.query("UPDATE job_schedules SET cron = '*/5 * * * *' WHERE id = ?", [id]);
    assert.equal((await schedule('edit')).needs_compute, 1, 'an edit marks the row');
    assert.equal((await publisher().computeNext()).computed, 1);
    row = await schedule('edit');
    const [[{ ok }]] = (await pool.query('SELECT ? > UTC_TIMESTAMP(3) AND ? <= UTC_TIMESTAMP(3) + INTERVAL 5 MINUTE AS ok', [row.next_run_at, row.next_run_at])) as unknown as [[{ ok: number }]];
    assert.equal(Number(ok), 1, `next tick within five minutes: ${row.next_run_at}`);

    await pool.query('UPDATE job_schedules SET paused = TRUE WHERE id = ?', [id]);
    await publisher().computeNext();
    assert.equal((await schedule('edit')).next_run_at, null, 'paused: no next run');
    await pool.query('UPDATE job_schedules SET paused = FALSE WHERE id = ?', [id]);
    await publisher().computeNext();
    assert.notEqual((await schedule('edit')).next_run_at, null, 'resumed: next tick computed again');
  });

  it('an invalid cron or zone is set aside with last_error; the other rows go on; fixing it heals it', async () => {
    await insertSchedule({ name: 'bad-cron', cron: 'every day', type: 'sleep' });
    await insertSchedule({ name: 'bad-zone', cron: '* * * * *', timezone: 'Mars/Olympus', type: 'sleep' });
    const good = await insertSchedule({ name: 'good', cron: '* * * * *', type: 'sleep' });
    assert.match(String((await schedule('bad-cron')).last_error), /invalid cron "every day"/);
    assert.match(String((await schedule('bad-zone')).last_error), /invalid time zone "Mars\/Olympus"/);
    assert.equal((await schedule('bad-cron')).next_run_at, null);
    assert.equal(invalid.length, 2, 'reported once each');
    await backdate(good, 1);
    const { made } = await publisher().tick();
    assert.equal(made, 1, 'the good row still ticks');
    assert.equal((await publisher().computeNext()).computed, 0, 'a set-aside row is not retried every poll');

    await pool.query("UPDATE job_schedules SET timezone = 'Europe/Paris' WHERE name = 'bad-zone'");
    await publisher().computeNext();
    const healed = await schedule('bad-zone');
    assert.equal(healed.last_error, null);
    assert.notEqual(healed.next_run_at, null);
  });

  it('a due tick makes one job from the template, with schedule_id and scheduled_for, and advances the row', async () => {
    const id = await insertSchedule({
      name: 'template', cron: '* * * * *', type: 'record', queue: 'Emails', payload: '{"n": 1}', priority: 3, max_attempts: 5, timeout_ms: 900, concurrency_key: 'k',
    });
    await backdate(id, 1);
    const tick = String((await schedule('template')).next_run_at);
    assert.equal((await publisher().tick()).made, 1);
    const [job] = await rows('SELECT * FROM jobs WHERE schedule_id = ?', [id]);
    assert.ok(job);
    assert.deepEqual(
      { queue: job.queue, type: job.type, payload: job.payload, priority: job.priority, max_attempts: job.max_attempts, timeout_ms: job.timeout_ms, key: job.concurrency_key, status: job.status },
      { queue: 'Emails', type: 'record', payload: { n: 1 }, priority: 3, max_attempts: 5, timeout_ms: 900, key: 'k', status: 'pending' },
    );
    assert.equal(job.scheduled_for, tick);
    const row = await schedule('template');
    assert.equal(row.last_run_at, tick);
    assert.equal(Number(row.last_job_id), Number(job.id));
    assert.ok(String(row.next_run_at) > tick, 'next_run_at moved forward');
    assert.equal(ticked.length, 1);
    assert.equal(ticked[0]?.made, 1);
  });

  it('eight publishers on eight connections racing for the same ticks make one job per tick', async () => {
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await insertSchedule({ name: `race-${i}`, cron: '* * * * * *', type: 'sleep', catch_up: 'all' }));
    const backdatedAt = Date.now();
    for (const id of ids) await backdate(id, 3);
    const dbs = Array.from({ length: 8 }, () => new Database({ url: fresh.url, connectionLimit: 2 }));
    try {
      await Promise.all(dbs.map((d) => publisher(d).tick()));
      await Promise.all(dbs.map((d) => publisher(d).tick()));
    } finally {
      await Promise.all(dbs.map((d) => d.end()));
    }
    const dupes = await rows('SELECT schedule_id, scheduled_for, COUNT(*) AS n FROM jobs GROUP BY schedule_id, scheduled_for HAVING n > 1');
    assert.deepEqual(dupes, []);
    const perSchedule = await rows('SELECT schedule_id, COUNT(*) AS n FROM jobs GROUP BY schedule_id');
    assert.equal(perSchedule.length, 20, 'every schedule ticked');
    // 3 s backdated, plus the seconds the test itself took on a busy machine.
    const most = 3 + Math.ceil((Date.now() - backdatedAt) / 1000) + 1;
    for (const r of perSchedule) assert.ok(Number(r.n) >= 3 && Number(r.n) <= most, `3 s of a seconds cron, caught up once (≤ ${most}): ${JSON.stringify(r)}`);
    assert.equal(ticked.reduce((n, e) => n + e.skipped.duplicate, 0), 0, 'the CAS, not the unique key, kept them apart');
  });

  it("catch_up after downtime: 'latest' one job, 'none' none, 'all' one per missed tick", async () => {
    // Hourly at the minute half an hour from now: the latest tick is ~30 min old, well
    // past the grace of 'none'. The mark 160 min back leaves 3 ticks (-30, -90, -150 min).
    const [clock] = await rows('SELECT MINUTE(UTC_TIMESTAMP()) AS m');
    const cron = `${(Number(clock?.m) + 30) % 60} * * * *`;
    const latest = await insertSchedule({ name: 'latest', cron, type: 'sleep', catch_up: 'latest' });
    const none = await insertSchedule({ name: 'none', cron, type: 'sleep', catch_up: 'none' });
    const all = await insertSchedule({ name: 'all', cron, type: 'sleep', catch_up: 'all' });
    for (const id of [latest, none, all]) await backdate(id, 160 * 60);
    await publisher().tick();
    const made = async (id: number) => (await rows('SELECT scheduled_for FROM jobs WHERE schedule_id = ? ORDER BY scheduled_for', [id])).map((r) => String(r.scheduled_for));
    const [newest] = await rows('SELECT UTC_TIMESTAMP(3) - INTERVAL 31 MINUTE < ? AND ? < UTC_TIMESTAMP(3) - INTERVAL 29 MINUTE AS ok', [(await made(latest))[0], (await made(latest))[0]]);
    assert.equal((await made(latest)).length, 1);
    assert.equal(Number(newest?.ok), 1, `'latest' made the most recent tick: ${(await made(latest))[0]}`);
    assert.deepEqual(await made(none), []);
    assert.equal((await made(all)).length, 4, `the mark itself and 3 missed ticks: ${(await made(all)).join(', ')}`);
    assert.deepEqual((await made(all)).slice(1).map((t) => t.slice(14)), Array(3).fill(`${cron.split(' ')[0]?.padStart(2, '0')}:00.000`));
    for (const id of [latest, none, all]) {
      const [r] = await rows('SELECT next_run_at > UTC_TIMESTAMP(3) AS future FROM job_schedules WHERE id = ?', [id]);
      assert.equal(Number(r?.future), 1, 'every row is back to the future');
    }
  });

  it("'all' is capped at 1,000 jobs after a long outage of a seconds cron", async () => {
    const id = await insertSchedule({ name: 'flood', cron: '* * * * * *', type: 'sleep', catch_up: 'all' });
    await backdate(id, 3 * 3600);
    await publisher().tick();
    assert.equal(Number((await rows('SELECT COUNT(*) AS n FROM jobs WHERE schedule_id = ?', [id]))[0]?.n), 1000);
    assert.ok((ticked[0]?.skipped.catchUp ?? 0) >= 1000, 'the rest counted as skipped');
  });

  it("overlap 'skip' waits for the previous job to end, and a job pruned by retention counts as ended", async () => {
    const id = await insertSchedule({ name: 'skip', cron: '* * * * *', type: 'sleep', overlap: 'skip' });
    await backdate(id, 1);
    await publisher().tick();
    const [first] = await rows('SELECT id FROM jobs WHERE schedule_id = ?', [id]);
    assert.ok(first);

    await backdate(id, 1);
    await publisher().tick();
    assert.equal((await rows('SELECT id FROM jobs WHERE schedule_id = ?', [id])).length, 1, 'skipped: the first is still pending');
    assert.match(String((await schedule('skip')).last_error), /has not ended \(overlap 'skip'\)/);
    assert.equal(ticked.at(-1)?.skipped.overlap, 1);

    await pool.query('DELETE FROM jobs WHERE id = ?', [first.id]); // what retention does to a finished job
    await backdate(id, 1);
    await publisher().tick();
    assert.equal((await rows('SELECT id FROM jobs WHERE schedule_id = ?', [id])).length, 1, 'a gone job has ended: the tick is made');
    assert.equal((await schedule('skip')).last_error, null);
  });

  it('a tick that already has a job (next_run_at set back by hand) is skipped, not an error every poll', async () => {
    const id = await insertSchedule({ name: 'again', cron: '* * * * *', type: 'sleep' });
    await backdate(id, 1);
    const tick = String((await schedule('again')).next_run_at);
    await publisher().tick();
    await pool.query('UPDATE job_schedules SET next_run_at = ? WHERE id = ?', [tick, id]);
    assert.equal((await publisher().tick()).made, 0);
    assert.equal((await rows('SELECT id FROM jobs WHERE schedule_id = ?', [id])).length, 1);
    assert.equal(ticked.at(-1)?.skipped.duplicate, 1);
    assert.ok(String((await schedule('again')).next_run_at) > tick, 'and the row moved on');
  });

  it('the idle poll is index-served: peek, quiet heartbeat and the due-row lock (EXPLAIN)', async () => {
    // Enough rows that a full scan would show.
    const values = Array.from({ length: 300 }, (_, i) => [`bulk-${i}`, '0 3 * * *', 'sleep']);
    await pool.query('INSERT INTO job_schedules (name, cron, type) VALUES ?', [values]);
    await publisher().computeNext();
    while ((await publisher().computeNext()).computed > 0);
    await pool.query('ANALYZE TABLE job_schedules');
    const plans: mysql.RowDataPacket[][] = [];
    const explaining: Executor = {
      run: async <T>(_n: string, sql: string, params: unknown[] = []): Promise<T> => {
        const [plan] = await pool.query<mysql.RowDataPacket[]>(`EXPLAIN ${sql}`, params);
        plans.push(plan);
        return [] as unknown as T;
      },
    };
    await schedulesPeek(explaining);
    await jobsProbe(explaining, { queues: [], deadAfterMs: 30_000 });
    await workersHeartbeatIfQuiet(explaining, { worker: 'w', queues: [] });
    await schedulesLockDue(explaining, 50);
    for (const plan of plans) {
      for (const step of plan.filter((s) => s.table === 's' || s.table === 'job_schedules')) {
        assert.notEqual(step.type, 'ALL', `full scan of job_schedules: ${JSON.stringify(step)}`);
        assert.equal(step.key, 'job_schedules_due', JSON.stringify(step));
        assert.doesNotMatch(String(step.Extra ?? ''), /filesort|temporary/i, JSON.stringify(step));
      }
    }
    // The peek's MIN is answered from the index alone.
    assert.ok(plans[0]?.some((s) => /Select tables optimized away/.test(String(s.Extra))), JSON.stringify(plans[0]));
  });

  it('a failed transaction rolls the job back with the CAS (nothing half-made)', async () => {
    const id = await insertSchedule({ name: 'atomic', cron: '* * * * *', type: 'sleep' });
    // Lock the row in our own transaction, insert a job, then fail: nothing stays.
    await backdate(id, 1);
    await assert.rejects(
      inTransaction(db, 'test', async (tx) => {
        const [due] = await schedulesLockDue(tx, 1);
        assert.ok(due);
        await tx.run('x', 'INSERT INTO jobs (type, schedule_id, scheduled_for) VALUES (?, ?, ?)', ['sleep', id, due.nextRunAt]);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal((await rows('SELECT id FROM jobs WHERE schedule_id = ?', [id])).length, 0, 'the job went with the rollback');
    assert.equal((await publisher().tick()).made, 1, 'and the tick is still there to make');
  });
});
