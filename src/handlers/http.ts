import { TextDecoder } from 'node:util';
import { PermanentJobError, RetryAfterError } from '../errors.js';
import { hostPort, parseAllowList } from './http-allow-list.js';
import { parsePayload, type HttpRequest } from './http-payload.js';
import type { Handler, JobContext } from './types.js';

/**
 * The built-in `http` handler: one job = one HTTP call to a host in SLUICE_HTTP_ALLOW.
 *
 * Outcomes (the README section "The `http` handler" has the user-facing tables):
 *   2xx            → the response body is the job's result (JSON when the response says JSON,
 *                    else text; over `maxResultBytes` → `{ truncated: true, body: '<text>' }`)
 *   429, 503 with Retry-After → RetryAfterError (capped at MAX_RETRY_AFTER_MS)
 *   5xx, 429, network error, timeout_ms elapsed → plain Error: retried with backoff
 *   other 3xx/4xx, bad payload, host or redirect target not allowed → PermanentJobError
 *
 * Decisions worth knowing:
 * - `Idempotency-Key: <job id>` is always sent; a payload header of that name is refused
 *   (a bad payload) rather than silently replaced, so a retry can always be deduplicated
 *   by the called service on the job id.
 * - Redirects are followed by hand (at most MAX_REDIRECTS), each hop checked against the
 *   allow list. 303, and 301/302 after a POST, become a GET without body (as browsers do);
 *   on a hop to another origin, credential headers are dropped.
 * - `timeout_ms` bounds the whole call: every hop and the reading of the body.
 * - Header values and URL paths/queries are never logged nor put in errors: they may
 *   hold secrets. Logs and errors name the method and host:port only.
 */

/** Default cap on the stored result: 64 KiB of response body. */
export const DEFAULT_MAX_RESULT_BYTES = 64 * 1024;
/** A Retry-After longer than this (1 hour) is cut to it: a job should not vanish for days. */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
/** Redirect hops followed before the job fails. */
export const MAX_REDIRECTS = 5;
/** Longest body excerpt put in an error message, in characters. */
const EXCERPT_CHARS = 200;
/** Dropped on a redirect to another origin, as fetch drops Authorization. */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface HttpHandlerOptions {
  /** Lower-cased `host` (any port) or `host:port` entries, from SLUICE_HTTP_ALLOW. */
  readonly allow: readonly string[];
  /** Response bytes kept as the result; default DEFAULT_MAX_RESULT_BYTES. */
  readonly maxResultBytes?: number;
  /** For tests; default the global fetch. */
  readonly fetchImpl?: typeof fetch;
}


export function createHttpHandler(options: HttpHandlerOptions): Handler {
  const allowed = parseAllowList(options.allow);
  const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  if (!Number.isInteger(maxResultBytes) || maxResultBytes < 1) {
    throw new RangeError(`maxResultBytes must be a positive whole number (got ${maxResultBytes})`);
  }
  const fetchImpl = options.fetchImpl ?? globalThis.fetch;

  return async function http(job, ctx) {
    const req = parsePayload(job.payload);
    req.headers.set('idempotency-key', String(job.id));
    if (!allowed(req.url)) {
      throw new PermanentJobError(`host ${hostPort(req.url)} is not in SLUICE_HTTP_ALLOW; no request was made`);
    }
    let what = `${req.method} ${hostPort(req.url)}`;
    if (ctx.signal.aborted) throw transportError(ctx.signal.reason, what, ctx.signal, undefined, undefined);

    const timeout = req.timeoutMs === undefined ? undefined : AbortSignal.timeout(req.timeoutMs);
    const signal = timeout === undefined ? ctx.signal : anySignal([ctx.signal, timeout]);
    try {
      for (let hop = 0; ; hop++) {
        what = `${req.method} ${hostPort(req.url)}`;
        const res = await send(fetchImpl, req, signal, ctx);
        if (!REDIRECTS.has(res.status) || !res.headers.has('location')) {
          return await outcome(res, what, maxResultBytes);
        }
        const next = redirectTarget(res, req.url);
        if (next === undefined || !allowed(next) || hop >= MAX_REDIRECTS) {
          const why =
            next === undefined
              ? 'to a location that is not an http(s) URL'
              : !allowed(next)
                ? `to host ${hostPort(next)}, which is not in SLUICE_HTTP_ALLOW`
                : `more than ${MAX_REDIRECTS} times`;
          throw new PermanentJobError(`${statusLine(res, what)} redirects ${why}; not followed${await excerpt(res)}`);
        }
        await res.body?.cancel();
        follow(req, res.status, next);
      }
    } catch (err) {
      throw transportError(err, what, ctx.signal, timeout, req.timeoutMs);
    }
  };
}

/** One hop: the fetch itself, logged at debug without headers, path or query. */
async function send(fetchImpl: typeof fetch, req: HttpRequest, signal: AbortSignal, ctx: JobContext): Promise<Response> {
  const started = performance.now();
  const fields = { method: req.method, host: hostPort(req.url) };
  try {
    const res = await fetchImpl(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'manual',
      signal,
    });
    ctx.log.debug({ ...fields, status: res.status, duration_ms: Math.round(performance.now() - started) }, 'http call');
    return res;
  } catch (err) {
    ctx.log.debug({ ...fields, status: null, duration_ms: Math.round(performance.now() - started) }, 'http call failed');
    throw err;
  }
}

/** Maps a final (non-redirect) response to the job's result or to the right error class. */
async function outcome(res: Response, what: string, maxResultBytes: number): Promise<unknown> {
  const { status } = res;
  if (status >= 200 && status < 300) return resultOf(res, maxResultBytes);
  const message = `${statusLine(res, what)}${await excerpt(res)}`;
  if (status === 429 || status >= 500) {
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
    if (retryAfterMs !== undefined) throw new RetryAfterError(message, retryAfterMs);
    throw new Error(message);
  }
  throw new PermanentJobError(message);
}

async function resultOf(res: Response, maxResultBytes: number): Promise<unknown> {
  const { bytes, truncated } = await readUpTo(res, maxResultBytes);
  const contentType = res.headers.get('content-type') ?? '';
  if (truncated) {
    // stream: true holds back a character cut in half at the limit instead of emitting U+FFFD.
    return { truncated: true, body: decoderFor(contentType).decode(bytes, { stream: true }) };
  }
  if (bytes.byteLength === 0) return null;
  const text = decoderFor(contentType).decode(bytes);
  if (isJson(contentType)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text; // said JSON but is not: the call still succeeded, keep what came back
    }
  }
  return text;
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

/** `: <first 200 characters of the body, whitespace collapsed>`, or '' for an empty body. */
async function excerpt(res: Response): Promise<string> {
  let text: string;
  try {
    const { bytes } = await readUpTo(res, EXCERPT_CHARS * 4);
    text = decoderFor(res.headers.get('content-type') ?? '').decode(bytes, { stream: true });
  } catch {
    return ''; // the status is the news; a body that fails to arrive does not change the outcome
  }
  const chars = Array.from(text.replace(/\s+/g, ' ').trim());
  if (chars.length === 0) return '';
  return `: ${chars.length > EXCERPT_CHARS ? `${chars.slice(0, EXCERPT_CHARS - 1).join('')}…` : chars.join('')}`;
}

/** `HTTP 404 Not Found from POST api.internal:8080` */
function statusLine(res: Response, what: string): string {
  return `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} from ${what}`;
}

/**
 * Retry-After as milliseconds from now: delta-seconds or an HTTP-date, clamped to
 * [0, MAX_RETRY_AFTER_MS]; undefined when absent or unreadable (plain backoff applies).
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

/** The Location of a redirect, resolved against the current URL; undefined unless http(s). */
function redirectTarget(res: Response, from: URL): URL | undefined {
  try {
    const next = new URL(res.headers.get('location') ?? '', from);
    return next.protocol === 'http:' || next.protocol === 'https:' ? next : undefined;
  } catch {
    return undefined;
  }
}

/** Rewrites the request for the next hop, as the fetch standard does for each status. */
function follow(req: HttpRequest, status: number, next: URL): void {
  if ((status === 303 && req.method !== 'HEAD') || ((status === 301 || status === 302) && req.method === 'POST')) {
    req.method = 'GET';
    req.body = undefined;
    req.headers.delete('content-type');
  }
  if (next.origin !== req.url.origin) for (const name of CREDENTIAL_HEADERS) req.headers.delete(name);
  req.url = next;
}

/** What a failed fetch or body read becomes; our own job errors pass through. */
function transportError(
  err: unknown,
  what: string,
  ctxSignal: AbortSignal,
  timeout: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Error {
  if (err instanceof PermanentJobError || err instanceof RetryAfterError) return err;
  if (ctxSignal.aborted) {
    return new Error(`${what}: aborted (${reasonText(ctxSignal.reason)}); no status`, { cause: ctxSignal.reason });
  }
  if (timeout?.aborted) return new Error(`${what}: no complete response within timeout_ms=${timeoutMs}; no status`);
  return new Error(`${what}: no response (${causeText(err)}); no status`, { cause: err });
}

/** undici's "fetch failed" hides the useful part (ECONNREFUSED …) in `cause`. */
function causeText(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  if (e.message) return e.message;
  return typeof code === 'string' ? code : e.name;
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message || reason.name;
  return String(reason);
}

/** AbortSignal.any arrived in Node 20.3; engines allows 20.0, so combine by hand there. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals);
  const controller = new AbortController();
  const onAbort = (event: Event): void => {
    controller.abort((event.target as AbortSignal).reason);
    for (const s of signals) s.removeEventListener('abort', onAbort);
  };
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener('abort', onAbort);
  }
  return controller.signal;
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
