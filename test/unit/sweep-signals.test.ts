import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SweepSignals } from '../../src/publishers/sweep-signals.js';

describe('SweepSignals: pending cancels', () => {
  it('a sighting wakes the cancel sweep and is taken once', () => {
    const signals = new SweepSignals(1000);
    let woken = 0;
    signals.onPendingCancels(() => woken++);
    assert.equal(signals.takePendingCancels(), false, 'nothing seen yet: no statement (unlike the other sweeps)');
    signals.update({ deadWorkers: false, overdue: false, pendingCancels: true });
    assert.equal(woken, 1);
    assert.equal(signals.takePendingCancels(), true);
    assert.equal(signals.takePendingCancels(), false, 'the next sweep waits for the next sighting');
  });

  it('a quiet heartbeat (which checks them too) clears a sighting not yet taken', () => {
    const signals = new SweepSignals(1000);
    signals.update({ deadWorkers: false, overdue: false, pendingCancels: true });
    signals.update({ deadWorkers: false, overdue: false });
    assert.equal(signals.takePendingCancels(), false);
  });
});
