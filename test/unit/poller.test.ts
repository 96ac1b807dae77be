import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { Poller, type Pollable, type Round } from '../../src/publishers/poller.js';
import { waitFor } from '../helpers/wait-for.js';

/** Returns the given results in turn, then waits a minute each time. */
function scripted(results: Array<number | Round>): Pollable & { calls: number } {
  return {
    name: 'scripted',
    calls: 0,
    runOnce() {
      return Promise.resolve(results[this.calls++] ?? 60_000);
    },
  };
}

describe('poller', () => {
  it('takes the next delay from a number or from a Round, and stop() cuts a long wait short', async () => {
    const target = scripted([0, { delayMs: 0 }, { delayMs: 1 }]);
    const poller = new Poller(target, createLogger('silent'));
    poller.start();
    await waitFor(() => target.calls === 4, { message: 'three short delays, then the minute' });
    await poller.stop();
    assert.equal(target.calls, 4, 'waiting the minute when stopped');
  });
});
