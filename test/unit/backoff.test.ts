import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorBackoffMs, jitter, retryDelayMs } from '../../src/backoff.js';
import { TokenBucket } from '../../src/token-bucket.js';

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

describe('TokenBucket (claim budgets)', () => {
  it('starts full, refills at the rate, never beyond its size', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    assert.equal(bucket.available(), 5);
    bucket.take(5);
    assert.equal(bucket.available(), 0);
    now = 250;
    assert.equal(bucket.available(), 2);
    assert.equal(bucket.msUntilToken(), 0);
    now = 10_000;
    assert.equal(bucket.available(), 5);
  });

  it('tells how long until the next token', () => {
    let now = 0;
    const bucket = new TokenBucket(4, 1, () => now);
    bucket.take(1);
    assert.equal(bucket.msUntilToken(), 250);
    now = 100;
    assert.equal(bucket.msUntilToken(), 150);
  });
});
