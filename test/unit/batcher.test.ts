import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batcher } from '../../src/consumers/batcher.js';
import { ByteBudget } from '../../src/consumers/byte-budget.js';

/** A write that refuses any batch holding a poisoned item, as a server refuses a statement. */
function refusing(poison: Set<number>, log: number[][]) {
  return (items: number[]): Promise<string[]> => {
    log.push([...items]);
    if (items.some((i) => poison.has(i))) return Promise.reject(Object.assign(new Error(`refused ${items.join(',')}`), { errno: 4038 }));
    return Promise.resolve(items.map((i) => `ok ${i}`));
  };
}

describe('Batcher', () => {
  it('splits a refused batch until the bad item stands alone; the others are written', async () => {
    const log: number[][] = [];
    const poisoned: number[] = [];
    const b = new Batcher<number, string>({
      write: refusing(new Set([5]), log),
      maxBatch: 100,
      delayMs: 1,
      onError: () => undefined,
      onPoison: (item) => {
        poisoned.push(item);
        return { replace: -item };
      },
    });
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => b.add(i)));
    assert.deepEqual(poisoned, [5]);
    assert.deepEqual(results, Array.from({ length: 64 }, (_, i) => (i === 5 ? 'ok -5' : `ok ${i}`)));
    // Two writes per halving round (log2 64 = 6), not one statement per item.
    assert.ok(log.length <= 2 * 6 + 2, `${log.length} writes`);
  });

  it('retries a transient failure with the same batch instead of splitting it', async () => {
    let calls = 0;
    const b = new Batcher<number, number>({
      write: (items) => (calls++ === 0 ? Promise.reject(Object.assign(new Error('gone'), { code: 'ECONNREFUSED' })) : Promise.resolve(items)),
      maxBatch: 100,
      delayMs: 1,
      onError: () => undefined,
      onPoison: () => assert.fail('a lost connection is not a poisoned item'),
    });
    assert.deepEqual(await Promise.all([b.add(1), b.add(2)]), [1, 2]);
    assert.equal(calls, 2);
  });

  it('caps a batch by bytes as well as by rows', async () => {
    const sizes: number[] = [];
    const b = new Batcher<string, number>({
      write: (items) => {
        sizes.push(items.reduce((n, s) => n + s.length, 0));
        return Promise.resolve(items.map((s) => s.length));
      },
      maxBatch: 1000,
      maxBytes: 100,
      sizeOf: (s) => s.length,
      delayMs: 1,
      onError: () => undefined,
    });
    await Promise.all(Array.from({ length: 10 }, () => b.add('x'.repeat(40))));
    assert.ok(sizes.every((n) => n <= 100), `batch sizes ${sizes.join(',')}`);
    assert.ok(sizes.length >= 5);
    // One item larger than the cap still goes, alone.
    assert.equal(await b.add('y'.repeat(500)), 500);
  });

  it('reports how long a write has been failing', async () => {
    let fail = true;
    const b = new Batcher<number, number>({
      write: (items) => (fail ? Promise.reject(Object.assign(new Error('gone'), { code: 'ECONNREFUSED' })) : Promise.resolve(items)),
      maxBatch: 10,
      delayMs: 1,
      onError: () => undefined,
    });
    const p = b.add(1);
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(b.failingForMs() > 0);
    fail = false;
    assert.equal(await p, 1);
    assert.equal(b.failingForMs(), 0);
  });
});

describe('ByteBudget', () => {
  it('lets items in while they fit, one oversized item alone, first come first served', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(60);
    let second = false;
    const p = budget.acquire(60).then(() => (second = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(second, false);
    budget.release(60);
    await p;
    assert.equal(budget.inUse, 60);
    budget.release(60);
    await budget.acquire(500); // larger than the budget: goes when nothing else holds any
    assert.equal(budget.inUse, 500);
  });
});
