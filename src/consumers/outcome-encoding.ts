import { MAX_ERROR_BYTES, MAX_JSON_DEPTH, MAX_RESULT_BYTES } from '../limits.js';

/** A result as the database can store it, or why it cannot be. */
export type EncodedResult = { ok: true; json: string } | { ok: false; error: string };

/** JSON.stringify writes a lone surrogate as `\udXXX`, which MariaDB's JSON parser refuses. */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/**
 * Turns a handler's return value into JSON text the database accepts: strings (and keys)
 * made well-formed, at most MAX_JSON_DEPTH levels deep and MAX_RESULT_BYTES long.
 * Anything else is refused with a readable reason; the caller fails the job with it.
 */
export function encodeResult(value: unknown): EncodedResult {
  let json: string;
  try {
    json = JSON.stringify(value ?? null) ?? 'null';
    // Rare: redo with every string made well-formed (the match may be an escaped
    // backslash followed by "ud800", which the second pass leaves as it is).
    if (ESCAPED_SURROGATE.test(json)) json = JSON.stringify(value, wellFormedReplacer) ?? 'null';
  } catch (err) {
    return { ok: false, error: `result is not JSON-serialisable: ${(err as Error).message}` };
  }
  // A string is at least one UTF-8 byte per UTF-16 unit and at most three.
  if (json.length > MAX_RESULT_BYTES || (json.length * 3 > MAX_RESULT_BYTES && Buffer.byteLength(json) > MAX_RESULT_BYTES)) {
    return { ok: false, error: `result could not be stored: ${Buffer.byteLength(json)} bytes of JSON, more than the ${MAX_RESULT_BYTES}-byte limit` };
  }
  if (json.length > 2 * MAX_JSON_DEPTH && jsonDepth(json) > MAX_JSON_DEPTH) {
    return { ok: false, error: `result could not be stored: nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
  return { ok: true, json };
}

function wellFormedReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.some((k) => !k.isWellFormed())) {
      return Object.fromEntries(keys.map((k) => [k.toWellFormed(), (value as Record<string, unknown>)[k]]));
    }
  }
  return value;
}

/** Deepest nesting of arrays and objects in JSON text (brackets inside strings do not count). */
export function jsonDepth(json: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return max;
}

/**
 * Text the database stores as it is: well-formed (a lone surrogate becomes U+FFFD) and at
 * most `maxBytes` of UTF-8, cut at a code point boundary with a marker.
 */
export function clipText(text: string, maxBytes = MAX_ERROR_BYTES): string {
  const clean = text.toWellFormed();
  if (clean.length * 3 <= maxBytes || Buffer.byteLength(clean) <= maxBytes) return clean;
  const marker = '… (truncated)';
  const room = maxBytes - Buffer.byteLength(marker);
  const bytes = Buffer.from(clean);
  // Step back over UTF-8 continuation bytes (10xxxxxx) so no code point is split.
  let end = room;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + marker;
}
