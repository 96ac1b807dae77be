import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { DeadlineTimers, type TimedRun } from '../../src/consumers/deadline-timers.js';

describe('DeadlineTimers (in mock time)', () => {
  /** Timers on mock time, with a clock the test moves by hand (ms). */
  function setUp(t: TestContext): { timers: DeadlineTimers<TimedRun>; expired: TimedRun[]; advance: (ms: number) => void } {
    t.mock.timers.enable({ apis: ['setTimeout', 'setImmediate'] });
    let now = 1000;
    const expired: TimedRun[] = [];
    const timers = new DeadlineTimers<TimedRun>((run) => expired.push(run), () => now);
    return { timers, expired, advance: (ms) => void (now += ms) };
  }

  it('a run that settles within its tick never gets a timer', (t) => {
    const { timers, expired } = setUp(t);
    const run: TimedRun = { state: 'running' };
    timers.start(run, 50);
    assert.equal(run.deadline, 1050);
    run.state = 'settled';
    timers.clear(run);
    t.mock.timers.tick(100);
    assert.equal(run.timer, undefined);
    assert.deepEqual(expired, []);
  });

  it('runs still going after the tick are armed in one pass, for the time left to their deadline', (t) => {
    const { timers, expired, advance } = setUp(t);
    const a: TimedRun = { state: 'running' };
    const b: TimedRun = { state: 'running' };
    timers.start(a, 50);
    advance(10);
    timers.start(b, 100);
    advance(30); // the pass runs 40 ms after a started: a has 10 ms left, b 70 ms
    t.mock.timers.tick(0);
    assert.ok(a.timer && b.timer);
    t.mock.timers.tick(9);
    assert.deepEqual(expired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(expired, [a]);
    t.mock.timers.tick(60);
    assert.deepEqual(expired, [a, b]);
  });

  it('a deadline already past fires at once; an armed run cleared before its deadline does not fire', (t) => {
    const { timers, expired, advance } = setUp(t);
    const late: TimedRun = { state: 'running' };
    const cleared: TimedRun = { state: 'running' };
    timers.start(late, 5);
    timers.start(cleared, 50);
    advance(20);
    t.mock.timers.tick(0);
    assert.deepEqual(expired, [late]);
    assert.ok(cleared.timer);
    timers.clear(cleared);
    assert.equal(cleared.deadline, undefined);
    t.mock.timers.tick(100);
    assert.deepEqual(expired, [late]);
  });
});
