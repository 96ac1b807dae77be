import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import type { Daemon } from '../../src/daemon.js';
import { closeFixtures, startDaemon, testEnv } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';

// What schedules cost an idle replica, at the default poll interval (1 s).

let db: FreshDatabase;
let pool: mysql.Pool;
let daemon: Daemon | undefined;

/** Statements sent so far (sluice_db_statements_total), in all and those of schedules. */
async function statements(): Promise<{ all: number; schedules: number }> {
  const { values } = await (daemon as Daemon).metrics.dbStatements.get();
  let all = 0;
  let schedules = 0;
  for (const v of values) {
    all += v.value;
    if (/^schedules|^jobsInsertScheduled|^jobsSelectUnended/.test(String(v.labels.statement))) schedules += v.value;
  }
  return { all, schedules };
}

/** Statements per second over `seconds`, measured on the running daemon. */
async function rate(seconds: number): Promise<{ all: number; schedules: number }> {
  const before = await statements();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await statements();
  return { all: (after.all - before.all) / seconds, schedules: (after.schedules - before.schedules) / seconds };
}

describe('schedules cost an idle replica next to nothing', () => {
  before(async () => {
    db = await freshDatabase('schedules_idle');
    pool = db.pool;
    daemon = await startDaemon(
      testEnv(db.url, { SLUICE_POLL_MS: '1000', SLUICE_HEARTBEAT_MS: '5000', SLUICE_DEAD_AFTER_MS: '30000', SLUICE_WORKER_ID: 'idle' }),
    );
  });
  after(async () => {
    await daemon?.stop();
    await closeFixtures();
    await db?.drop();
  });

  it('idle statements/s with no schedule, with a schedule not due, and per tick of a 2-second schedule', async (t) => {
    // Settle: start-up work (queue registration, first probes) is over.
    await new Promise((r) => setTimeout(r, 3000));
    const none = await rate(10);

    await pool.query("INSERT INTO job_schedules (name, cron, type) VALUES ('nightly', '0 3 * * *', 'sleep')");
    await waitFor(async () => {
      const [r] = await pool.query<mysql.RowDataPacket[]>("SELECT next_run_at FROM job_schedules WHERE name = 'nightly'");
      return r[0]?.next_run_at != null;
    });
    // A probe already in flight when the tick was computed still reports "to compute":
    // the one look that follows is part of settling, not of the idle cost. One poll (up to 1.1 s).
    await new Promise((r) => setTimeout(r, 1500));
    const notDue = await rate(10);

    await pool.query("INSERT INTO job_schedules (name, cron, type, payload) VALUES ('often', '*/2 * * * * *', 'sleep', '{\"ms\": 0}')");
    const [{ n: before }] = (await pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM jobs"))[0] as [{ n: number }];
    const ticking = await rate(10);
    const [{ n: after }] = (await pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM jobs"))[0] as [{ n: number }];
    const ticks = Number(after) - Number(before);

    const report = {
      idle_no_schedule_per_s: round(none.all),
      idle_schedule_not_due_per_s: round(notDue.all),
      schedule_statements_not_due_per_s: round(notDue.schedules),
      two_second_schedule_all_per_s: round(ticking.all),
      schedule_statements_per_tick: round((ticking.schedules * 10) / Math.max(1, ticks)),
      ticks_in_10_s: ticks,
    };
    t.diagnostic(JSON.stringify(report));
    console.log('schedules idle cost', JSON.stringify(report));
    assert.ok(none.all <= 1.5, `idle without schedules: ${none.all}/s`);
    assert.ok(notDue.schedules === 0, `a schedule not due sends no statement of its own: ${notDue.schedules}/s`);
    assert.ok(notDue.all <= none.all + 0.3, `a schedule row adds (next to) nothing: ${notDue.all}/s vs ${none.all}/s`);
    assert.ok(ticks >= 3, `the 2-second schedule ticked: ${ticks}`);
    assert.ok(ticking.schedules * 10 <= ticks * 8, `schedule statements per tick stay a handful: ${JSON.stringify(report)}`);
  });
});

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
