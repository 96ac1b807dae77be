import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUSY_REPOLL_MAX_MS, BUSY_REPOLL_MIN_MS, PollCadence } from '../../src/publishers/poll-cadence.js';

/** A cadence on a clock the test moves by hand (ms), with jitter fixed at `random`. */
function cadenceAt(pollMs: number, random = 0): { cadence: PollCadence; advance: (ms: number) => void } {
  let now = 1_000_000;
  const cadence = new PollCadence({ pollMs, random: () => random, now: () => now });
  return { cadence, advance: (ms) => void (now += ms) };
}

describe('PollCadence', () => {
  it('idle: waits the poll interval stretched by 0–10 %, never less', () => {
    assert.equal(cadenceAt(1000, 0).cadence.emptyLook(), 1000);
    assert.equal(cadenceAt(1000, 0.999).cadence.emptyLook(), 1100);
  });

  it('a full batch: looks again at once', () => {
    const { cadence } = cadenceAt(1000);
    assert.equal(cadence.claimed(100, 100), 0);
    assert.equal(cadence.claimed(150, 100), 0, 'a claim over its room (a rare race) counts as full');
  });

  it('a partial batch: looks again within BUSY_REPOLL_MIN_MS..BUSY_REPOLL_MAX_MS, sized to the arrival rate', () => {
    const { cadence, advance } = cadenceAt(1000);
    assert.equal(cadence.claimed(3, 100), BUSY_REPOLL_MAX_MS / 2, 'no rate known yet: half the longest wait');
    advance(10);
    assert.equal(cadence.claimed(1, 100), BUSY_REPOLL_MAX_MS, '0.1 job/ms: 100 jobs take longer than the cap');
    advance(10);
    assert.equal(cadence.claimed(200, 1000), BUSY_REPOLL_MIN_MS, '20 jobs/ms: 100 jobs in 5 ms, raised to the floor');
    advance(10);
    assert.equal(cadence.claimed(40, 100), 25, '4 jobs/ms: 100 jobs in 25 ms');
  });

  it('never waits longer than the poll interval after a partial batch', () => {
    const { cadence } = cadenceAt(30);
    assert.equal(cadence.claimed(1, 100), 25);
    assert.equal(cadence.claimed(1, 100), 30);
  });

  it('empty looks after work flowed back off from BUSY_REPOLL_MIN_MS, doubling, up to the interval', () => {
    const { cadence } = cadenceAt(1000);
    cadence.claimed(5, 100);
    const waits = Array.from({ length: 8 }, () => cadence.claimed(0, 100));
    assert.deepEqual(waits, [20, 40, 80, 160, 320, 640, 1000, 1000]);
    assert.equal(BUSY_REPOLL_MIN_MS * 2, waits[0]);
  });

  it('the rate-token wait: the jittered interval, or the next token if sooner', () => {
    const { cadence } = cadenceAt(1000, 0.5);
    assert.equal(cadence.noneClaimable(Infinity), 1000);
    assert.equal(cadence.noneClaimable(120), 120);
  });

  it('probes after an idle look, once a poll interval while work flows', () => {
    const { cadence, advance } = cadenceAt(1000);
    assert.equal(cadence.probeNow(false), true, 'never probed');
    cadence.probed();
    assert.equal(cadence.probeNow(true), true, 'idle: every look probes');
    advance(999);
    assert.equal(cadence.probeNow(false), false);
    advance(1);
    assert.equal(cadence.probeNow(false), true);
  });

  it('a scheduled job falling due: the idle wait ends then, and that look probes', () => {
    const { cadence, advance } = cadenceAt(1000);
    cadence.scheduledIn(300);
    cadence.probed();
    assert.equal(cadence.emptyLook(), 300, 'wakes when it is due, not a poll later');
    advance(300);
    assert.equal(cadence.probeNow(false), true);
    assert.equal(cadence.emptyLook(), 1000, 'no other job scheduled sooner');
  });

  it('early probes for scheduled jobs: at most one a poll interval', () => {
    const { cadence, advance } = cadenceAt(1000);
    cadence.probed();
    cadence.scheduledIn(100);
    advance(100);
    assert.equal(cadence.probeNow(false), true, 'the first is early');
    cadence.probed();
    cadence.scheduledIn(50);
    advance(50);
    assert.equal(cadence.probeNow(false), false, 'the next waits for the interval');
    assert.equal(cadence.emptyLook(), 1000);
    advance(950);
    assert.equal(cadence.probeNow(false), true);
  });

  it('a scheduled job due sooner than the floor still waits BUSY_REPOLL_MIN_MS', () => {
    const { cadence } = cadenceAt(1000);
    cadence.scheduledIn(1);
    assert.equal(cadence.emptyLook(), BUSY_REPOLL_MIN_MS);
  });
});
