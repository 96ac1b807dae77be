import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flag, idsOf, isRow, json, jsonList, num, numOrNull, text, textOrNull } from '../../src/db/queries/rows.js';

describe('row field conversions', () => {
  it('numbers come as numbers or strings (BIGINT, DECIMAL), NULL stays null where allowed', () => {
    assert.equal(num('9007199254740991'), 9007199254740991);
    assert.equal(num(12), 12);
    assert.equal(numOrNull(null), null);
    assert.equal(numOrNull(undefined), null);
    assert.equal(numOrNull('1.5'), 1.5);
    assert.deepEqual(idsOf([{ id: '3' }, { id: 4 }]), [3, 4]);
  });

  it('flags come as 0/1, "0"/"1" inside JSON, or booleans', () => {
    assert.deepEqual([0, 1, '0', '1', true, false, null].map(flag), [false, true, false, true, true, false, false]);
  });

  it('text stays text; a number is written as digits', () => {
    assert.equal(text('Emails'), 'Emails');
    assert.equal(text(42), '42');
    assert.equal(textOrNull(null), null);
    assert.equal(textOrNull('w1'), 'w1');
  });

  it('JSON columns: text is parsed (MariaDB), values pass (MySQL 8), text that is not JSON stays text', () => {
    assert.deepEqual(json('{"a":[1,2]}'), { a: [1, 2] });
    assert.deepEqual(json({ a: 1 }), { a: 1 });
    assert.equal(json('not json'), 'not json');
    assert.equal(json(null), null);
    assert.deepEqual(jsonList('["a","b"]'), ['a', 'b']);
    assert.deepEqual(jsonList(null), [], 'JSON_ARRAYAGG of no row is NULL');
    assert.deepEqual(jsonList('{"a":1}'), []);
    assert.deepEqual([{ a: 1 }, [1], null, 'x'].map(isRow), [true, false, false, false]);
  });
});
