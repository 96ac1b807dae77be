import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { DeferredHistogram } from '../../src/observability/deferred-histogram.js';

describe('DeferredHistogram', () => {
  const config = { name: 'x_seconds', help: 'x', labelNames: ['queue', 'outcome'] as const, buckets: [0.001, 0.01, 0.1, 1] };

  it('shows at a scrape what observe would have shown', async () => {
    const deferred = new Registry();
    const direct = new Registry();
    const d = new DeferredHistogram({ ...config, registers: [deferred] });
    const h = new Histogram({ ...config, registers: [direct] });
    const done = { queue: 'q', outcome: 'done' };
    const failed = { queue: 'q', outcome: 'failed' };
    // On a bound, between bounds, past the last one, zero.
    const seen: [typeof done, number][] = [[done, 0.001], [done, 0.0005], [failed, 0.5], [done, 7], [done, 0], [failed, 0.01]];
    for (const [l, v] of seen) {
      d.add(l, v);
      h.observe({ ...l }, v);
    }
    assert.equal(await deferred.metrics(), await direct.metrics());
    d.add(failed, 0.02);
    h.observe(failed, 0.02);
    assert.equal(await deferred.metrics(), await direct.metrics(), 'observations after a scrape show at the next');
    assert.deepEqual((await d.get()).values, (await h.get()).values);
  });

  it('adds to a series that observe made, and forgets pending observations on reset', async () => {
    const d = new DeferredHistogram({ ...config, name: 'y_seconds', registers: [] });
    d.observe({ queue: 'q', outcome: 'done' }, 0.05);
    d.add({ queue: 'q', outcome: 'done' }, 0.05);
    const count = (await d.get()).values.find((v) => v.metricName === 'y_seconds_count');
    assert.equal(count?.value, 2);
    d.add({ queue: 'q', outcome: 'done' }, 0.05);
    d.reset();
    assert.deepEqual((await d.get()).values, []);
  });
});
