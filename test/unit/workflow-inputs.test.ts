import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Database } from '../../src/db/database.js';
import { failFastError } from '../../src/db/queries/workflows-counting.js';
import { PermanentJobError } from '../../src/errors.js';
import { FAN_IN_MAX_BYTES, FAN_IN_MAX_CHILDREN, fanInBody } from '../../src/handlers/http-fan-in.js';
import type { ChildOutcome, EnqueueJob } from '../../src/handlers/types.js';
import { enqueueJobs, MAX_ENQUEUE } from '../../src/workflows/enqueue.js';

/** A database that must not be reached: validation refuses before any statement. */
const unreachable = new Proxy({}, { get: () => assert.fail('the database was reached') }) as unknown as Database;
const parent = { worker: 'w', run: { id: 1, attempts: 0 } };

async function* children(n: number, result: unknown = { ok: true }): AsyncGenerator<ChildOutcome> {
  for (let i = 1; i <= n; i++) yield await Promise.resolve({ id: i, type: 'render', status: 'done', result, error: null });
}

describe('ctx.enqueue input', () => {
  it('refuses bad rows before any statement, naming the row and the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [[{}], /job 0: type is required/],
      [[{ type: 'x' }, { type: 'y', colour: 'red' }], /job 1 has unknown field\(s\) colour/],
      [[{ type: 'x', priority: 1.5 }], /priority must be a whole number/],
      [[{ type: 'x', status: 'running' }], /status must be 'pending' or 'waiting'/],
      [[{ type: 'x', on_child_failure: 'ignore' }], /on_child_failure must be 'fail' or 'continue'/],
      [[{ type: 'x', run_at: 17 }], /run_at must be a Date or a DATETIME string/],
      [[{ type: 'x', queue: '' }], /queue must be a string of 1 to 64 characters/],
      [Array.from({ length: MAX_ENQUEUE + 1 }, () => ({ type: 'x' })), /more than 10000/],
    ];
    for (const [jobs, message] of cases) {
      await assert.rejects(enqueueJobs(unreachable, jobs as EnqueueJob[], {}, parent), (err: Error) => err instanceof PermanentJobError && message.test(err.message));
    }
    await assert.rejects(enqueueJobs(unreachable, [{ type: 'x', parent_id: 9 }], { wait: true }, parent), /parent_id 9 given with \{ wait: true \}/);
    await assert.rejects(enqueueJobs(unreachable, [{ type: 'x' }], { wait: true, onChildFailure: 'maybe' as 'fail' }, parent), /onChildFailure must be/);
  });
});

describe('fan-in body of an http parent', () => {
  it("wraps the payload's body with the children's outcomes", async () => {
    const body = JSON.parse(await fanInBody('{"month":"2026-11"}', children(2)));
    assert.deepEqual(body, {
      body: { month: '2026-11' },
      children: [
        { id: 1, type: 'render', status: 'done', result: { ok: true }, error: null },
        { id: 2, type: 'render', status: 'done', result: { ok: true }, error: null },
      ],
      children_truncated: false,
    });
    assert.deepEqual(JSON.parse(await fanInBody(undefined, children(0))), { body: null, children: [], children_truncated: false });
  });

  it('stops at the child or byte bound and says so', async () => {
    const many = JSON.parse(await fanInBody(undefined, children(FAN_IN_MAX_CHILDREN + 5)));
    assert.equal(many.children.length, FAN_IN_MAX_CHILDREN);
    assert.equal(many.children_truncated, true);
    const exact = JSON.parse(await fanInBody(undefined, children(FAN_IN_MAX_CHILDREN)));
    assert.equal(exact.children_truncated, false, 'exactly the bound is not truncated');
    const big = await fanInBody(undefined, children(10, 'x'.repeat(300_000)));
    const parsed = JSON.parse(big);
    assert.equal(parsed.children.length, 3);
    assert.equal(parsed.children_truncated, true);
    assert.ok(Buffer.byteLength(big) < FAN_IN_MAX_BYTES + 200);
  });
});

describe('fail-fast error', () => {
  it('names the child, its type and how it ended, with its error on one line', () => {
    assert.equal(failFastError({ id: 42, type: 'render', status: 'failed', error: 'HTTP 500\n  from  POST render.svc:80' }), 'child 42 (render) ended failed: HTTP 500 from POST render.svc:80');
    assert.equal(failFastError({ id: 7, type: 'x', status: 'cancelled', error: null }), 'child 7 (x) ended cancelled');
  });
});
