import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { DeferredCounter } from '../../src/observability/deferred-counter.js';

describe('DeferredCounter', () => {
  it('shows at a scrape what inc would have shown', async () => {
    const deferred = new Registry();
    const direct = new Registry();
    const config = { name: 'x_total', help: 'x', labelNames: ['queue', 'outcome'] as const };
    const d = new DeferredCounter({ ...config, registers: [deferred] });
    const c = new Counter({ ...config, registers: [direct] });
    const done = { queue: 'q', outcome: 'done' };
    const failed = { queue: 'q', outcome: 'failed' };
    for (const l of [done, failed, done, done]) {
      d.add(l);
      c.inc({ ...l });
    }
    assert.equal(await deferred.metrics(), await direct.metrics());
    d.add(failed);
    c.inc(failed);
    assert.equal(await deferred.metrics(), await direct.metrics(), 'sums added after a scrape show at the next');
    assert.deepEqual((await d.get()).values, (await c.get()).values);
  });

  it('forgets pending sums on reset', async () => {
    const d = new DeferredCounter({ name: 'y_total', help: 'y', labelNames: ['queue'] as const, registers: [] });
    d.add({ queue: 'q' });
    d.reset();
    assert.deepEqual((await d.get()).values, []);
  });
});
