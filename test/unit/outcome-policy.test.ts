import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { foldStart, outcomeOf, refusalOf, type PolicyJob } from '../../src/consumers/outcome-policy.js';
import { PermanentJobError } from '../../src/errors.js';
import { MAX_ATTEMPTS_BEFORE_RUN, MAX_PAYLOAD_BYTES, MAX_RETRY_DELAY_MS } from '../../src/limits.js';

const job: PolicyJob = { id: 7, attempts: 0, maxAttempts: 3, effectiveTimeoutMs: 5000 };

describe('outcome policy', () => {
  it('done stores the result, fenced on the run', () => {
    const d = outcomeOf(job, 1, { kind: 'done', result: { n: 1 } }, 'w');
    assert.equal(d.kind, 'done');
    assert.deepEqual(d.write, { id: 7, attempts: 1, from: 'running', status: 'done', result: '{"n":1}' });
  });

  it('a run that enqueued children to wait for parks the job: waiting, attempt not counted, answer ignored', () => {
    const d = outcomeOf(job, 2, { kind: 'done', result: 'ignored', parked: true }, 'w');
    assert.equal(d.kind, 'waiting');
    assert.deepEqual(d.write, { id: 7, attempts: 2, from: 'running', status: 'waiting', uncount: true });
  });

  it('a result that cannot be stored fails the job with the reason', () => {
    let deep: unknown = 0;
    for (let i = 0; i < 40; i++) deep = [deep];
    const d = outcomeOf(job, 1, { kind: 'done', result: deep }, 'w');
    assert.equal(d.kind, 'failed');
    assert.equal(d.write?.status, 'failed');
    assert.match(d.write?.error ?? '', /could not be stored: nested deeper/);
  });

  it('a thrown error retries with backoff until attempts run out, then fails', () => {
    const retry = outcomeOf(job, 1, { kind: 'error', error: new Error('boom') }, 'w');
    assert.equal(retry.kind, 'retry');
    assert.equal(retry.write?.status, 'pending');
    assert.ok((retry.write?.delayMs ?? 0) >= 1000);
    const last = outcomeOf(job, 3, { kind: 'error', error: new Error('boom') }, 'w');
    assert.equal(last.kind, 'failed');
  });

  it('a permanent error fails at once', () => {
    assert.equal(outcomeOf(job, 1, { kind: 'error', error: new PermanentJobError('no') }, 'w').kind, 'failed');
    assert.equal(outcomeOf(job, 1, { kind: 'error', error: Object.assign(new Error('no'), { permanent: true }) }, 'w').kind, 'failed');
  });

  it('retryAfterMs is honoured but clamped to a year (run_at stays in DATETIME range)', () => {
    const near = outcomeOf(job, 1, { kind: 'error', error: Object.assign(new Error('x'), { retryAfterMs: 60_000 }) }, 'w');
    assert.ok((near.write?.delayMs ?? 0) >= 60_000);
    const far = outcomeOf(job, 1, { kind: 'error', error: Object.assign(new Error('x'), { retryAfterMs: 1e15 }) }, 'w');
    assert.equal(far.write?.delayMs, MAX_RETRY_DELAY_MS);
  });

  it('error texts are made well-formed', () => {
    const d = outcomeOf(job, 1, { kind: 'error', error: new Error('bad \ud800 text') }, 'w');
    assert.equal(d.error, 'bad \ufffd text');
  });

  it('timeout and cancel end cancelled; shutdown and stale hand back uncounted; lost writes nothing', () => {
    assert.equal(outcomeOf(job, 1, { kind: 'timeout' }, 'w').write?.status, 'cancelled');
    assert.match(outcomeOf(job, 1, { kind: 'timeout' }, 'w').error ?? '', /timed out after 5000 ms/);
    assert.equal(outcomeOf(job, 1, { kind: 'cancel' }, 'w').write?.status, 'cancelled');
    for (const kind of ['shutdown', 'stale'] as const) {
      const d = outcomeOf(job, 1, { kind }, 'w');
      assert.equal(d.kind, 'handed_back');
      assert.equal(d.write?.uncount, true);
      assert.equal(d.write?.status, 'pending');
    }
    assert.deepEqual(outcomeOf(job, 1, { kind: 'lost' }, 'w'), { kind: 'lost' });
  });
});

describe('before and around a run', () => {
  it('refuses a payload over the limit and an attempts counter at its limit; anything else may run', () => {
    assert.equal(refusalOf({ payloadBytes: 10, attempts: 0 }), undefined);
    assert.equal(refusalOf({ payloadBytes: MAX_PAYLOAD_BYTES, attempts: MAX_ATTEMPTS_BEFORE_RUN - 1 }), undefined);
    assert.match(refusalOf({ payloadBytes: MAX_PAYLOAD_BYTES + 1, attempts: 0 }) ?? '', /more than the \d+-byte limit; no handler ran/);
    assert.match(refusalOf({ payloadBytes: 0, attempts: MAX_ATTEMPTS_BEFORE_RUN }) ?? '', /at the counter's limit; no handler ran/);
  });

  it('a start folded into the outcome is fenced on the claim and counts the attempt', () => {
    const write = outcomeOf(job, 1, { kind: 'done', result: null }, 'w').write!;
    assert.deepEqual(foldStart(write, 0, 123.5), {
      id: 7,
      attempts: 0,
      from: 'queued',
      status: 'done',
      result: 'null',
      started: true,
      startedAt: 123.5,
    });
    assert.equal(write.from, 'running', 'the decision itself is left as it was');
  });
});
