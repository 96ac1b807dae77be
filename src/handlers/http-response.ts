import { TextDecoder } from 'node:util';
import type { Response } from 'undici';

/** Reading a response of the `http` handler: the result of a 2xx, the excerpt of an error. */

/** Longest body excerpt put in an error message, in characters. */
const EXCERPT_CHARS = 200;

/**
 * A 2xx body as the job's result: parsed JSON when the response says JSON, else text; over
 * `maxResultBytes` → `{ truncated: true, body: '<text>' }`; empty → null. Every string in it
 * is well-formed Unicode (see wellFormed).
 */
export async function resultOf(res: Response, maxResultBytes: number): Promise<unknown> {
  const { bytes, truncated } = await readUpTo(res, maxResultBytes);
  const contentType = res.headers.get('content-type') ?? '';
  if (truncated) {
    // stream: true holds back a character cut in half at the limit instead of emitting U+FFFD.
    return { truncated: true, body: decoderFor(contentType).decode(bytes, { stream: true }).toWellFormed() };
  }
  if (bytes.byteLength === 0) return null;
  const text = decoderFor(contentType).decode(bytes).toWellFormed();
  if (isJson(contentType)) {
    try {
      return wellFormed(JSON.parse(text) as unknown, text);
    } catch {
      return text; // said JSON but is not: the call still succeeded, keep what came back
    }
  }
  return text;
}

/** `: <first 200 characters of the body, whitespace collapsed>`, or '' for an empty body. */
export async function excerpt(res: Response): Promise<string> {
  let text: string;
  try {
    const { bytes } = await readUpTo(res, EXCERPT_CHARS * 4);
    text = decoderFor(res.headers.get('content-type') ?? '').decode(bytes, { stream: true });
  } catch {
    return ''; // the status is the news; a body that fails to arrive does not change the outcome
  }
  const chars = Array.from(text.replace(/\s+/g, ' ').trim().toWellFormed());
  if (chars.length === 0) return '';
  return `: ${chars.length > EXCERPT_CHARS ? `${chars.slice(0, EXCERPT_CHARS - 1).join('')}…` : chars.join('')}`;
}

/** A JSON escape of a UTF-16 surrogate (\uD800–\uDFFF): the only way JSON text can carry a lone one. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/**
 * Replaces every lone surrogate in the parsed JSON `value` (in its strings and its keys) by
 * U+FFFD. `{"a":"\ud800"}` is valid JSON, but its string is not Unicode: MySQL and MariaDB
 * refuse to store it in a JSON column, so the job's result would be lost. Decoded text is
 * always well-formed, so only the escapes in `text` can bring one in: without any, the value
 * is returned as is. Walks with a stack, not recursion: the depth is the sender's choice.
 */
function wellFormed(value: unknown, text: string): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (!SURROGATE_ESCAPE.test(text)) return value;
  const pending: object[] = typeof value === 'object' && value !== null ? [value] : [];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    for (const [key, v] of Object.entries(node) as Array<[string, unknown]>) {
      const fixedKey = key.toWellFormed();
      const fixed = typeof v === 'string' ? v.toWellFormed() : v;
      if (typeof v === 'object' && v !== null) pending.push(v);
      if (fixedKey === key && fixed === v) continue;
      if (fixedKey !== key) Reflect.deleteProperty(node, key);
      // defineProperty, not assignment: a key "__proto__" (an own property from JSON.parse) stays data.
      Object.defineProperty(node, fixedKey, { value: fixed, writable: true, enumerable: true, configurable: true });
    }
  }
  return value;
}

/** Reads at most `limit` bytes of the body, then lets the rest go (closing the connection). */
async function readUpTo(res: Response, limit: number): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (res.body === null) return { bytes: new Uint8Array(0), truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total <= limit) {
    const { done, value } = (await reader.read()) as { done: boolean; value?: unknown };
    if (done) break;
    if (!(value instanceof Uint8Array)) throw new TypeError('response body chunk is not bytes');
    chunks.push(value);
    total += value.byteLength;
  }
  const truncated = total > limit;
  if (truncated) await reader.cancel();
  reader.releaseLock();
  const bytes = Buffer.concat(chunks);
  return { bytes: truncated ? bytes.subarray(0, limit) : bytes, truncated };
}

function isJson(contentType: string): boolean {
  return /^\s*(application\/([\w.-]+\+)?json|text\/json)\s*(;|$)/i.test(contentType);
}

function decoderFor(contentType: string): TextDecoder {
  const charset = /;\s*charset="?([\w.:-]+)"?/i.exec(contentType)?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8');
  } catch {
    return new TextDecoder('utf-8');
  }
}
