import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimCursor } from '../../src/db/queries/jobs-claim.js';
import { ClaimCursors, CURSOR_LIFE_MIN_MS, nextCursor } from '../../src/publishers/claim-cursors.js';

const at = (id: number): ClaimCursor => ({ priority: 0, runAt: '2026-11-28 12:00:00.000', id });

describe('ClaimCursors', () => {
  it('a run of full claims goes on from its cursor for one poll interval, then looks from the head', () => {
    const cursors = new ClaimCursors(5000);
    cursors.committed(new Map([['q', at(10)]]), 0);
    cursors.committed(new Map([['q', at(20)]]), 3000);
    assert.deepEqual(cursors.of('q', 4999), at(20), 'the run began at 0: its cursor lives until 5000');
    assert.equal(cursors.of('q', 5000), undefined);
    assert.equal(cursors.of('q', 5001), undefined, 'gone: the next run begins afresh');
  });

  it('a short poll interval does not send looks to the head more often than CURSOR_LIFE_MIN_MS', () => {
    const cursors = new ClaimCursors(200);
    cursors.committed(new Map([['q', at(10)]]), 0);
    assert.deepEqual(cursors.of('q', 200), at(10), 'past the poll interval, within the shortest life');
    assert.deepEqual(cursors.of('q', CURSOR_LIFE_MIN_MS - 1), at(10));
    assert.equal(cursors.of('q', CURSOR_LIFE_MIN_MS), undefined);
  });

  it('a short claim or an error sends the next look to the head', () => {
    const cursors = new ClaimCursors(1000);
    cursors.committed(new Map([['a', at(1)], ['b', at(2)]]), 0);
    cursors.committed(new Map([['a', undefined]]), 10);
    assert.equal(cursors.of('a', 20), undefined);
    assert.deepEqual(cursors.of('b', 20), at(2));
    cursors.clear();
    assert.equal(cursors.of('b', 20), undefined);
  });

  it('nextCursor: after the last row of a full claim without keyed jobs only', () => {
    type Rows = Parameters<typeof nextCursor>[0];
    // Only the fields nextCursor reads.
    const rows = (...r: Array<[number, string | null]>): Rows => r.map(([id, concurrencyKey]) => ({ ...at(id), concurrencyKey })) as unknown as Rows;
    const full = rows([1, null], [2, null]);
    assert.deepEqual(nextCursor(full, 2), at(2));
    assert.equal(nextCursor(full, 3), undefined, 'short: the queue may be empty, look from the head');
    assert.equal(nextCursor(rows([1, null], [2, 'k']), 2), undefined, 'a keyed job: its line sits behind it');
  });
});
