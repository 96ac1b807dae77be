import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../src/token-bucket.js';

/** A bucket on a clock the test moves by hand (ms). */
function bucketAt(rate: number, burst: number): { bucket: TokenBucket; advance: (ms: number) => void } {
  let now = 0;
  const bucket = new TokenBucket(rate, burst, () => now);
  return { bucket, advance: (ms) => void (now += ms) };
}

describe('TokenBucket (claim budgets)', () => {
  it('starts full, refills at the rate, never beyond its size', () => {
    const { bucket, advance } = bucketAt(10, 5);
    assert.equal(bucket.available(), 5);
    bucket.take(5);
    assert.equal(bucket.available(), 0);
    advance(250);
    assert.equal(bucket.available(), 2, '10/s for 250 ms: 2.5 tokens, 2 whole ones');
    assert.equal(bucket.msUntilToken(), 0);
    advance(10_000);
    assert.equal(bucket.available(), 5);
  });

  it('tells how long until the next token', () => {
    const { bucket, advance } = bucketAt(4, 1);
    bucket.take(1);
    assert.equal(bucket.msUntilToken(), 250);
    advance(100);
    assert.equal(bucket.msUntilToken(), 150);
    advance(150);
    assert.equal(bucket.msUntilToken(), 0);
  });

  it('a take beyond what is there leaves a debt that is paid back first', () => {
    const { bucket, advance } = bucketAt(10, 2);
    bucket.take(5); // a claim took more rows than the budget said: 3 tokens owed
    assert.equal(bucket.available(), -3);
    assert.equal(bucket.msUntilToken(), 400, 'four tenths of a second to get back to one token');
    advance(400);
    assert.equal(bucket.available(), 1);
  });

  it('configure() changes the rate from now on and shrinks the tokens to a smaller size', () => {
    const { bucket, advance } = bucketAt(10, 10);
    advance(1_000);
    bucket.configure(2, 4); // the queue's rate was lowered (or another replica joined)
    assert.equal(bucket.available(), 4, 'a full bucket of 10 becomes a full bucket of 4');
    bucket.take(4);
    advance(1_000);
    assert.equal(bucket.available(), 2, 'refills at the new rate');
  });

  it('configure() credits the time before the change at the old rate', () => {
    const { bucket, advance } = bucketAt(1, 10);
    bucket.take(10);
    advance(2_000); // 2 tokens at 1/s
    bucket.configure(100, 10);
    assert.equal(bucket.available(), 2, 'not 10: the new rate applies only from the change on');
    advance(50);
    assert.equal(bucket.available(), 7);
  });

  it('drain() hands on every whole token and keeps the fraction growing (the rate limiter refill)', () => {
    const { bucket, advance } = bucketAt(10, 5);
    bucket.take(5); // the limiter's reservoir holds the first burst
    advance(250);
    assert.equal(bucket.drain(), 2, '2.5 tokens: 2 move on');
    assert.equal(bucket.drain(), 0, 'nothing twice');
    advance(50);
    assert.equal(bucket.drain(), 1, 'the half token kept, plus half a token more');
    advance(60_000);
    assert.equal(bucket.drain(), 5, 'never more than the bucket holds, however late the tick');
  });

  it('drain() never hands on a debt', () => {
    const { bucket } = bucketAt(10, 2);
    bucket.take(5);
    assert.equal(bucket.drain(), 0);
    assert.equal(bucket.available(), -3);
  });
});
