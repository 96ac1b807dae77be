import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeldRuns, InterruptedError, type HeldRun } from '../../src/consumers/held-runs.js';
import type { RunnableJob } from '../../src/room.js';
import type { Settlement } from '../../src/consumers/outcome-policy.js';

function job(id: number, more: Partial<RunnableJob> = {}): RunnableJob {
  return {
    id,
    queue: 'default',
    type: 'noop',
    payload: {},
    payloadBytes: 10,
    payloadDeferred: false,
    priority: 0,
    runAt: '2025-01-01 00:00:00.000',
    attempts: 0,
    maxAttempts: 3,
    timeoutMs: null,
    concurrencyKey: null,
    waitedMs: 0,
    reclaimed: false,
    resumed: false,
    childCount: 0,
    effectiveTimeoutMs: 1000,
    claimedAt: 0,
    ...more,
  };
}

/** Job 1 queued, job 2 running; what settles job 2 is collected. */
function queuedOneRunningTwo(): { held: HeldRuns; running: HeldRun; settled: Settlement[] } {
  const held = new HeldRuns();
  held.admit(job(1));
  held.admit(job(2));
  const running = held.get(2)!;
  held.setState(running, 'running');
  const settled: Settlement[] = [];
  running.settle = (s) => settled.push(s);
  return { held, running, settled };
}

describe('HeldRuns', () => {
  it('counts queued jobs and their inline payload bytes until they leave the queue', () => {
    const held = new HeldRuns();
    assert.equal(held.admit(job(1)), true);
    assert.equal(held.admit(job(2, { payloadBytes: 5000, payloadDeferred: true })), true);
    assert.equal(held.queuedCount, 2);
    assert.equal(held.queuedPayloadBytes, 10, 'a deferred payload is not loaded while queued');
    held.setState(held.get(1)!, 'starting');
    assert.equal(held.queuedCount, 1);
    assert.equal(held.queuedPayloadBytes, 0);
    assert.equal(held.runningCount, 1);
    held.forget(held.get(2)!);
    assert.equal(held.queuedCount, 0);
    assert.deepEqual(held.refs(), [{ id: 1, attempts: 0 }]);
  });

  it('refuses the same run twice; a newer attempt of the same job replaces the old claim', () => {
    const held = new HeldRuns();
    held.admit(job(1));
    assert.equal(held.admit(job(1)), false);
    assert.equal(held.queuedCount, 1);
    assert.equal(held.admit(job(1, { attempts: 1 })), true);
    assert.equal(held.queuedCount, 1, 'the first claim was dropped');
    assert.deepEqual(held.refs(), [{ id: 1, attempts: 1 }]);
  });

  it('forgetting a replaced run leaves the newer claim in place', () => {
    const held = new HeldRuns();
    held.admit(job(1));
    const first = held.get(1)!;
    held.setState(first, 'starting');
    held.admit(job(1, { attempts: 1 }));
    held.forget(first);
    assert.deepEqual(held.refs(), [{ id: 1, attempts: 1 }]);
  });

  it('a cancel drops a queued run and returns it; a running run is aborted and settled', () => {
    const { held, running, settled } = queuedOneRunningTwo();
    const cancelled = held.applyChanges([
      { id: 1, cancelRequested: true, stillOurs: true },
      { id: 2, cancelRequested: true, stillOurs: true },
      { id: 99, cancelRequested: true, stillOurs: true },
    ]);
    assert.deepEqual(cancelled.map((e) => e.job.id), [1]);
    assert.equal(held.get(1), undefined);
    assert.equal(held.queuedCount, 0);
    assert.deepEqual(settled, [{ kind: 'cancel' }]);
    assert.ok(running.controller?.signal.aborted);
    const reason: unknown = running.controller?.signal.reason;
    assert.ok(reason instanceof InterruptedError);
    assert.equal(reason.message, 'job cancelled');
  });

  it('a row taken away drops a queued run and settles a running one as lost', () => {
    const { held, settled } = queuedOneRunningTwo();
    const cancelled = held.applyChanges([
      { id: 1, cancelRequested: false, stillOurs: false },
      { id: 2, cancelRequested: true, stillOurs: false },
    ]);
    assert.deepEqual(cancelled, []);
    assert.equal(held.get(1), undefined);
    assert.deepEqual(settled, [{ kind: 'lost' }]);
  });

  it('a starting run keeps the first interruption until its handler would be called', () => {
    const held = new HeldRuns();
    held.admit(job(1));
    held.admit(job(2));
    const starting = held.get(1)!;
    held.setState(starting, 'starting');
    held.interruptStarted('shutdown');
    held.interrupt(starting, 'timeout');
    assert.equal(starting.pendingInterruption, 'shutdown');
    assert.equal(starting.controller, undefined, 'nothing to abort yet');
    assert.equal(held.get(2)?.state, 'queued', 'queued runs are left to the caller');
  });
});
