import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorBackoffMs } from '../../src/backoff.js';
import { retry } from '../../src/retry.js';

/** A function that fails `failures` times (with `thrown`), then resolves to 'ok'. */
function flaky(failures: number, thrown: unknown = new Error('not yet')): { fn: (attempt: number) => Promise<string>; attempts: number[] } {
  const attempts: number[] = [];
  return {
    attempts,
    fn: async (attempt) => {
      attempts.push(attempt);
      if (attempts.length <= failures) throw thrown;
      return Promise.resolve('ok');
    },
  };
}

describe('retry', () => {
  it('tries again after each failure, waiting errorBackoffMs, and returns the first success', async () => {
    const { fn, attempts } = flaky(3);
    const waits: Array<[string, number, number]> = [];
    const value = await retry(fn, { baseMs: 2, maxMs: 5, random: () => 0.5, onRetry: (err, failures, delay) => waits.push([err.message, failures, delay]) });
    assert.equal(value, 'ok');
    assert.deepEqual(attempts, [1, 2, 3, 4]);
    assert.deepEqual(waits, [
      ['not yet', 1, errorBackoffMs(1, { baseMs: 2, maxMs: 5, random: () => 0.5 })],
      ['not yet', 2, errorBackoffMs(2, { baseMs: 2, maxMs: 5, random: () => 0.5 })],
      ['not yet', 3, 5],
    ]);
  });

  it('throws an error that is not retryable at once', async () => {
    const { fn, attempts } = flaky(5, new TypeError('bad argument'));
    await assert.rejects(retry(fn, { baseMs: 1, retryable: (err) => !(err instanceof TypeError) }), /bad argument/);
    assert.deepEqual(attempts, [1]);
  });

  it('gives up after `attempts` tries with the last error', async () => {
    const { fn, attempts } = flaky(5);
    await assert.rejects(retry(fn, { baseMs: 1, attempts: 3 }), /not yet/);
    assert.deepEqual(attempts, [1, 2, 3]);
  });

  it('starts no try after the deadline', async () => {
    const { fn, attempts } = flaky(5);
    const retried: number[] = [];
    // The first wait (≥ 7.5 s) would end past a deadline 1 s away: no second try.
    await assert.rejects(retry(fn, { baseMs: 10_000, deadline: Date.now() + 1_000, onRetry: (_e, n) => retried.push(n) }), /not yet/);
    assert.deepEqual(attempts, [1]);
    assert.deepEqual(retried, [], 'a retry that cannot happen is not announced');
  });

  it('asks a deadline given as a function after each failure (a stop may set it meanwhile)', async () => {
    const { fn, attempts } = flaky(5);
    let deadline = Infinity;
    // Retries freely until the second failure sets a deadline that the next wait would pass.
    const outcome = retry(fn, { baseMs: 1, maxMs: 1, deadline: () => deadline, onRetry: (_e, n) => n === 2 && (deadline = Date.now()) });
    await assert.rejects(outcome, /not yet/);
    assert.deepEqual(attempts, [1, 2, 3]);
  });

  it('an abort cuts the wait short and throws the error being waited out', async () => {
    const { fn, attempts } = flaky(5, new Error('database away'));
    const stop = new AbortController();
    const outcome = retry(fn, { baseMs: 60_000, signal: stop.signal, onRetry: () => stop.abort() });
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the wait was not cut short')), 10_000).unref());
    await assert.rejects(Promise.race([outcome, timeout]), /database away/);
    assert.deepEqual(attempts, [1]);
  });

  it('an aborted signal still lets the first try run, but not a second', async () => {
    const stop = new AbortController();
    stop.abort();
    assert.equal(await retry(flaky(0).fn, { signal: stop.signal }), 'ok');
    const { fn, attempts } = flaky(1);
    await assert.rejects(retry(fn, { signal: stop.signal, baseMs: 1 }), /not yet/);
    assert.deepEqual(attempts, [1]);
  });

  it('hands onRetry an Error whatever was thrown', async () => {
    const messages: string[] = [];
    const value = await retry(flaky(1, 'plain string').fn, { baseMs: 1, onRetry: (err) => messages.push(err.message) });
    assert.equal(value, 'ok');
    assert.deepEqual(messages, ['plain string']);
  });
});
