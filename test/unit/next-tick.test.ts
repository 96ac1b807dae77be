import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScheduleClock, ScheduleSpecError } from '../../src/schedules/next-tick.js';
import { CATCH_UP_MAX, MISSED_AFTER_MS, planTicks } from '../../src/schedules/tick-plan.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The next `n` ticks after `from`, as ISO strings. */
function nexts(cron: string, zone: string, from: string, n = 2): Array<string | null> {
  const clock = ScheduleClock.parse(cron, zone);
  const out: Array<string | null> = [];
  let t: number | null = at(from);
  for (let i = 0; i < n && t !== null; i++) {
    t = clock.nextAfter(t);
    out.push(iso(t));
  }
  return out;
}

describe('cron in a time zone: spring-forward gap runs at the next valid instant', () => {
  it('Europe/Berlin 02:30 on 2026-03-29 (02:00→03:00) runs at 03:00 CEST, then 02:30 CEST the next day', () => {
    assert.deepEqual(nexts('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z'), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
  });

  it('America/New_York 02:30 on 2026-03-08 runs at 03:00 EDT', () => {
    assert.deepEqual(nexts('30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z'), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']);
  });

  it('Australia/Adelaide (half-hour zone, +9:30/+10:30) 02:30 on 2026-10-04 runs at 03:00 ACDT', () => {
    assert.deepEqual(nexts('30 2 * * *', 'Australia/Adelaide', '2026-10-03T00:00:00Z'), ['2026-10-03T16:30:00.000Z', '2026-10-04T16:00:00.000Z']);
  });

  it('every 15 minutes: the gap ticks collapse into one job at the gap end, no tick is lost or doubled', () => {
    assert.deepEqual(nexts('*/15 * * * *', 'Europe/Berlin', '2026-03-29T00:40:00Z', 3), [
      '2026-03-29T00:45:00.000Z', // 01:45 CET
      '2026-03-29T01:00:00.000Z', // 02:00–02:45 do not exist: 03:00 CEST, once
      '2026-03-29T01:15:00.000Z', // 03:15 CEST
    ]);
  });
});

describe('cron in a time zone: a repeated hour runs once (first occurrence)', () => {
  it('Europe/Berlin 02:30 on 2026-10-25 (03:00→02:00) runs once, at 02:30 CEST', () => {
    assert.deepEqual(nexts('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z'), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('America/New_York 01:30 on 2026-11-01 (02:00→01:00) runs once, at 01:30 EDT', () => {
    assert.deepEqual(nexts('30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z'), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
  });

  it('Australia/Adelaide 02:30 on 2026-04-05 runs once, at 02:30 ACDT', () => {
    assert.deepEqual(nexts('30 2 * * *', 'Australia/Adelaide', '2026-04-04T00:00:00Z'), ['2026-04-04T16:00:00.000Z', '2026-04-05T17:00:00.000Z']);
  });

  it('every 30 minutes: the wall times of the repeated hour are not made again', () => {
    // 02:00 and 02:30 CEST, then the clock shows 02:00–02:59 again (CET): skipped, next 03:00 CET.
    assert.deepEqual(nexts('*/30 * * * *', 'Europe/Berlin', '2026-10-24T23:45:00Z', 3), [
      '2026-10-25T00:00:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T02:00:00.000Z',
    ]);
    // Asked from inside the second occurrence, the next tick is still 03:00 CET.
    assert.deepEqual(nexts('*/30 * * * *', 'Europe/Berlin', '2026-10-25T01:10:00Z', 1), ['2026-10-25T02:00:00.000Z']);
  });
});

describe('cron parsing', () => {
  it('a half-hour zone without DST, 6 fields with seconds, and nicknames', () => {
    assert.deepEqual(nexts('0 9 * * *', 'Asia/Kolkata', '2026-06-01T00:00:00Z', 1), ['2026-06-01T03:30:00.000Z']);
    assert.deepEqual(nexts('*/2 * * * * *', 'UTC', '2026-06-01T00:00:00.500Z'), ['2026-06-01T00:00:02.000Z', '2026-06-01T00:00:04.000Z']);
    assert.deepEqual(nexts('@daily', 'UTC', '2026-06-01T00:00:00Z', 1), ['2026-06-02T00:00:00.000Z']);
  });

  it('refuses a bad cron or zone with a readable message', () => {
    assert.throws(() => ScheduleClock.parse('61 * * * *', 'UTC'), (e: Error) => e instanceof ScheduleSpecError && /invalid cron "61 \* \* \* \*"/.test(e.message));
    assert.throws(() => ScheduleClock.parse('* * * * * * *', 'UTC'), ScheduleSpecError);
    assert.throws(() => ScheduleClock.parse('* * * * *', 'Mars/Olympus'), (e: Error) => /invalid time zone "Mars\/Olympus"/.test(e.message));
    assert.throws(() => ScheduleClock.parse('* * * * *', ''), ScheduleSpecError);
  });

  it('a cron with no future tick answers null', () => {
    assert.equal(ScheduleClock.parse('0 0 30 2 *', 'UTC').nextAfter(at('2026-01-01T00:00:00Z')), null);
  });
});

describe('ticks in a span (catch-up)', () => {
  it('across a gap: each instant once', () => {
    const clock = ScheduleClock.parse('*/30 * * * *', 'Europe/Berlin');
    const { ticks, dropped } = clock.ticksIn(at('2026-03-29T00:00:00Z'), at('2026-03-29T02:00:00Z'), 100);
    assert.deepEqual(ticks.map(iso), ['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-29T02:00:00.000Z']);
    assert.equal(dropped, 0);
  });

  it('ending inside the second occurrence of a repeated hour: the first occurrence ticks, once', () => {
    const clock = ScheduleClock.parse('*/30 * * * *', 'Europe/Berlin');
    const { ticks } = clock.ticksIn(at('2026-10-24T23:45:00Z'), at('2026-10-25T01:40:00Z'), 100);
    assert.deepEqual(ticks.map(iso), ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z']);
  });

  it('keeps the latest `max` and counts the rest', () => {
    const clock = ScheduleClock.parse('* * * * *', 'UTC');
    const { ticks, dropped } = clock.ticksIn(at('2026-01-01T00:00:00Z'), at('2026-01-01T01:00:00Z'), 10);
    assert.equal(ticks.length, 10);
    assert.equal(iso(ticks[0] ?? null), '2026-01-01T00:51:00.000Z');
    assert.equal(iso(ticks[9] ?? null), '2026-01-01T01:00:00.000Z');
    assert.equal(dropped, 50);
  });
});

describe('planTicks: catch_up after downtime', () => {
  const base = { cron: '*/10 * * * *', timezone: 'UTC' };
  const now = at('2026-01-01T12:05:00Z');

  it('on time (a poll late): the due tick is made and next is the first tick after now', () => {
    for (const catchUp of ['latest', 'none', 'all'] as const) {
      const p = planTicks({ ...base, catchUp, nextRunAt: at('2026-01-01T12:00:00Z'), now: at('2026-01-01T12:00:00.800Z') });
      assert.deepEqual(p.ticks.map(iso), ['2026-01-01T12:00:00.000Z'], catchUp);
      assert.equal(iso(p.next), '2026-01-01T12:10:00.000Z');
      assert.equal(p.dropped, 0);
    }
  });

  it("'latest' makes one job for the most recent missed tick", () => {
    const p = planTicks({ ...base, catchUp: 'latest', nextRunAt: at('2026-01-01T10:00:00Z'), now });
    assert.deepEqual(p.ticks.map(iso), ['2026-01-01T12:00:00.000Z']);
    assert.equal(p.dropped, 12);
    assert.equal(iso(p.next), '2026-01-01T12:10:00.000Z');
  });

  it("'none' drops ticks found more than MISSED_AFTER_MS late, but makes one that is merely a poll late", () => {
    const late = planTicks({ ...base, catchUp: 'none', nextRunAt: at('2026-01-01T10:00:00Z'), now });
    assert.deepEqual(late.ticks, []);
    assert.equal(late.dropped, 13);
    assert.equal(iso(late.next), '2026-01-01T12:10:00.000Z');
    const single = planTicks({ ...base, catchUp: 'none', nextRunAt: at('2026-01-01T12:00:00Z'), now: at('2026-01-01T12:00:00Z') + MISSED_AFTER_MS + 1 });
    assert.deepEqual(single.ticks, []);
    const justLate = planTicks({ ...base, catchUp: 'none', nextRunAt: at('2026-01-01T12:00:00Z'), now: at('2026-01-01T12:00:01.500Z') });
    assert.deepEqual(justLate.ticks.map(iso), ['2026-01-01T12:00:00.000Z']);
  });

  it("'all' makes one job per missed tick, oldest first", () => {
    const p = planTicks({ ...base, catchUp: 'all', nextRunAt: at('2026-01-01T11:30:00Z'), now });
    assert.deepEqual(p.ticks.map(iso), ['2026-01-01T11:30:00.000Z', '2026-01-01T11:40:00.000Z', '2026-01-01T11:50:00.000Z', '2026-01-01T12:00:00.000Z']);
  });

  it(`'all' is capped at ${CATCH_UP_MAX} (the latest), cheaply, after a day of a seconds cron`, () => {
    const started = performance.now();
    const p = planTicks({ cron: '* * * * * *', timezone: 'Europe/Berlin', catchUp: 'all', nextRunAt: now - 86_400_000, now });
    assert.equal(p.ticks.length, CATCH_UP_MAX);
    assert.equal(iso(p.ticks.at(-1) ?? null), '2026-01-01T12:05:00.000Z');
    assert.equal(new Set(p.ticks).size, CATCH_UP_MAX, 'no tick twice');
    assert.ok(p.dropped >= 1000, `dropped ${p.dropped}`);
    assert.ok(performance.now() - started < 2000, 'bounded work');
  });

  it('a user-set next_run_at that is not a cron tick ("run now") is made as is', () => {
    const p = planTicks({ ...base, catchUp: 'latest', nextRunAt: at('2026-01-01T12:04:00Z'), now });
    assert.deepEqual(p.ticks.map(iso), ['2026-01-01T12:04:00.000Z']);
    assert.equal(iso(p.next), '2026-01-01T12:10:00.000Z');
  });

  it('a bad spec makes nothing and says why', () => {
    const p = planTicks({ cron: 'every day', timezone: 'UTC', catchUp: 'latest', nextRunAt: now, now });
    assert.deepEqual(p.ticks, []);
    assert.equal(p.next, null);
    assert.match(p.error ?? '', /invalid cron "every day"/);
  });
});
