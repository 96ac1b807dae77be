import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorBackoffMs, jitter, retryDelayMs } from '../../src/backoff.js';

describe('retry backoff', () => {
  it('doubles per attempt, with jitter within [base·2^(n-1), 2·base·2^(n-1)]', () => {
    for (const attempt of [1, 2, 3, 6]) {
      const low = retryDelayMs(attempt, { random: () => 0 });
      const high = retryDelayMs(attempt, { random: () => 0.999999 });
      assert.equal(low, 1000 * 2 ** (attempt - 1));
      assert.ok(high >= 2 * low - 1 && high <= 2 * low, `attempt ${attempt}: ${high}`);
    }
  });

  it('is capped', () => {
    assert.equal(retryDelayMs(40, { random: () => 0.5, maxMs: 60_000 }), 60_000);
  });

  it('spreads retries of the same attempt (jitter is real)', () => {
    const values = new Set(Array.from({ length: 50 }, () => retryDelayMs(3)));
    assert.ok(values.size > 10);
  });

  it('error backoff grows with failures and stays within ±25 %', () => {
    assert.equal(errorBackoffMs(1, { random: () => 0.5 }), 250);
    assert.equal(errorBackoffMs(3, { random: () => 0.5 }), 1000);
    assert.equal(errorBackoffMs(3, { random: () => 0 }), 750);
    assert.equal(errorBackoffMs(50, { random: () => 0.5 }), 30_000);
  });

  it('poll jitter keeps the mean and stays within ±10 %', () => {
    assert.equal(jitter(1000, () => 0), 900);
    assert.equal(jitter(1000, () => 0.5), 1000);
    assert.equal(jitter(1000, () => 1), 1100);
  });
});
