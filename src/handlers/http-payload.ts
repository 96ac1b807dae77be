import { PermanentJobError } from '../errors.js';

/** The `http` handler's payload: checked field by field, every error naming the field. */

/** setTimeout's limit; a longer timeout_ms would fire at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const PAYLOAD_FIELDS = new Set(['url', 'method', 'headers', 'body', 'timeout_ms']);
/** Set by sluice or by the HTTP client; a payload may not set them. */
const RESERVED_HEADERS = new Set([
  'idempotency-key',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface HttpRequest {
  url: URL;
  method: string;
  headers: Headers;
  /** JSON text, or undefined when the payload has no `body`. */
  body: string | undefined;
  timeoutMs: number | undefined;
}

export function parsePayload(payload: unknown): HttpRequest {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw bad(`payload must be a JSON object with at least "url" (got ${shown(payload)})`);
  }
  const p = payload as Record<string, unknown>;
  const unknown = Object.keys(p).filter((k) => !PAYLOAD_FIELDS.has(k));
  if (unknown.length > 0) {
    throw bad(`payload has unknown field(s) ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: ${[...PAYLOAD_FIELDS].join(', ')}`);
  }

  const url = parseUrl(p.url);

  const rawMethod = p.method ?? 'POST';
  const method = typeof rawMethod === 'string' ? rawMethod.toUpperCase() : '';
  if (!METHODS.has(method)) throw bad(`payload.method must be one of ${[...METHODS].join(', ')} (got ${shown(rawMethod)})`);

  const headers = parseHeaders(p.headers);

  let body: string | undefined;
  if (p.body !== undefined) {
    if (method === 'GET' || method === 'HEAD') throw bad(`payload.body cannot be sent with ${method}; drop it or use POST`);
    body = JSON.stringify(p.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }

  let timeoutMs: number | undefined;
  if (p.timeout_ms !== undefined && p.timeout_ms !== null) {
    const t = p.timeout_ms;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_TIMEOUT_MS) {
      throw bad(`payload.timeout_ms must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (got ${shown(t)})`);
    }
    timeoutMs = t;
  }

  return { url, method, headers, body, timeoutMs };
}

function parseUrl(raw: unknown): URL {
  if (raw === undefined || raw === null) throw bad('payload.url is required');
  if (typeof raw !== 'string') throw bad(`payload.url must be a string (got ${shown(raw)})`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('payload.url is not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw bad(`payload.url must be http or https (got ${url.protocol.slice(0, -1)})`);
  }
  if (url.username || url.password) throw bad('payload.url must not hold credentials; send them in payload.headers');
  return url;
}

/** Header values are never echoed in errors: they may be secrets. */
function parseHeaders(raw: unknown): Headers {
  const headers = new Headers();
  if (raw === undefined || raw === null) return headers;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw bad(`payload.headers must be an object of name → string value (got ${Array.isArray(raw) ? 'an array' : shown(raw)})`);
  }
  for (const [name, value] of Object.entries(raw)) {
    if (!HEADER_NAME.test(name)) throw bad(`payload.headers has an invalid header name ${shown(name)}`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw bad(`payload.headers may not set "${name}": ${name.toLowerCase() === 'idempotency-key' ? 'sluice sends the job id there' : 'the HTTP client sets it'}`);
    }
    if (typeof value !== 'string') throw bad(`payload.headers["${name}"] must be a string (got a ${value === null ? 'null' : typeof value})`);
    if (/[\r\n\0]/.test(value)) throw bad(`payload.headers["${name}"] holds a line break or NUL`);
    headers.set(name, value);
  }
  return headers;
}

function bad(message: string): PermanentJobError {
  return new PermanentJobError(`bad http payload: ${message}`);
}

/** A payload value for an error message, cut short. */
function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? `a ${typeof value}`);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
