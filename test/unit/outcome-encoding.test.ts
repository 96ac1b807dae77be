import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipText, encodeResult, jsonDepth } from '../../src/consumers/outcome-encoding.js';
import { MAX_ERROR_BYTES, MAX_JSON_DEPTH, MAX_RESULT_BYTES } from '../../src/limits.js';

const LONE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('encodeResult', () => {
  it('stores ordinary values as JSON, undefined as null', () => {
    assert.deepEqual(encodeResult({ a: 1 }), { ok: true, json: '{"a":1}' });
    assert.deepEqual(encodeResult(undefined), { ok: true, json: 'null' });
  });

  it('makes lone surrogates well-formed, in values and in keys, and keeps real pairs', () => {
    const r = encodeResult({ text: 'a\ud800b', ['k\udc00']: 'v', ok: 'ok😀' });
    assert.ok(r.ok);
    assert.doesNotMatch(r.json, LONE_ESCAPE);
    assert.deepEqual(JSON.parse(r.json), { text: 'a\ufffdb', 'k\ufffd': 'v', ok: 'ok😀' });
  });

  it('leaves an escaped backslash followed by "ud800" alone', () => {
    const r = encodeResult({ path: 'C:\\ud800' });
    assert.ok(r.ok);
    assert.deepEqual(JSON.parse(r.json), { path: 'C:\\ud800' });
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and refuses one more`, () => {
    assert.ok(encodeResult(nested(MAX_JSON_DEPTH)).ok);
    const r = encodeResult(nested(MAX_JSON_DEPTH + 1));
    assert.ok(!r.ok);
    assert.match(r.error, /nested deeper than 31 levels/);
  });

  it('refuses a result larger than the limit, naming its size', () => {
    assert.ok(encodeResult('x'.repeat(MAX_RESULT_BYTES - 2)).ok);
    const r = encodeResult('x'.repeat(MAX_RESULT_BYTES));
    assert.ok(!r.ok);
    assert.match(r.error, /1048578 bytes of JSON, more than the 1048576-byte limit/);
    // Multi-byte characters count as bytes, not as UTF-16 units.
    assert.ok(!encodeResult('é'.repeat(MAX_RESULT_BYTES / 2)).ok);
  });

  it('refuses what JSON cannot hold', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    const r = encodeResult(a);
    assert.ok(!r.ok);
    assert.match(r.error, /not JSON-serialisable/);
  });

  it('jsonDepth ignores brackets inside strings', () => {
    assert.equal(jsonDepth('{"a":"[[[[","b":[1,[2]]}'), 3);
    assert.equal(jsonDepth('"\\"[["'), 0);
  });
});

describe('clipText', () => {
  it('cuts by UTF-8 bytes at a code point boundary, never splitting an emoji', () => {
    const text = 'a'.repeat(MAX_ERROR_BYTES - 20) + '😀'.repeat(20);
    const clipped = clipText(text);
    assert.ok(Buffer.byteLength(clipped) <= MAX_ERROR_BYTES, `${Buffer.byteLength(clipped)} bytes`);
    assert.ok(clipped.isWellFormed());
    assert.match(clipped, /😀… \(truncated\)$/);
  });

  it('turns a lone surrogate into U+FFFD and leaves short text alone', () => {
    assert.equal(clipText('x\ud800y'), 'x\ufffdy');
    assert.equal(clipText('short'), 'short');
  });

  it('the 8,000-unit message of the reproduction is kept whole and well-formed', () => {
    const message = 'a'.repeat(7999) + '😀 tail';
    assert.equal(clipText(message), message);
  });
});
