import { rootCertificates } from 'node:tls';
import type { Agent, Response } from 'undici';
import { PermanentJobError, RetryAfterError } from '../errors.js';
import { type AddressClass, AddressRefusedError, guardedLookup } from './http-address-guard.js';
import { type AllowList, hostPort, parseAllowList } from './http-allow-list.js';
import { parsePayload, type HttpRequest } from './http-payload.js';
import { fanInBody } from './http-fan-in.js';
import { excerpt, resultOf } from './http-response.js';
import type { Handler, JobContext } from './types.js';

/**
 * The built-in `http` handler: one job = one HTTP call to a host in SLUICE_HTTP_ALLOW.
 *
 * Outcomes (docs/http-handler.md has the user-facing tables):
 *   2xx            → the response body is the job's result (JSON when the response says JSON,
 *                    else text; over `maxResultBytes` → `{ truncated: true, body: '<text>' }`)
 *   429, 503 with Retry-After → RetryAfterError (capped at MAX_RETRY_AFTER_MS)
 *   5xx, 429, network error, timeout_ms elapsed → plain Error: retried with backoff
 *   other 3xx/4xx, bad payload, host or redirect target not allowed, https → http redirect,
 *   host name resolving to a loopback/private/link-local/metadata address that no CIDR entry
 *   of the allow list admits → PermanentJobError
 *
 * Decisions worth knowing:
 * - `Idempotency-Key: <job id>` is always sent; a payload header of that name is refused
 *   (a bad payload) rather than silently replaced, so a retry can always be deduplicated
 *   by the called service on the job id.
 * - Connections go through an undici Agent whose `lookup` refuses internal addresses
 *   (http-address-guard.ts): the check is on the address the socket really connects to, so
 *   a DNS answer that changes after the allow-list check (DNS rebinding) cannot slip past.
 *   The allow list's CIDR entries are the only way a name reaches an internal address.
 *   Node's global fetch takes no `lookup`, hence undici's own fetch and Agent.
 * - Redirects are followed by hand (at most MAX_REDIRECTS), each hop checked against the
 *   allow list; https → http is refused (a downgrade would send the request in clear).
 *   303, and 301/302 after a POST, become a GET without body (as browsers do); on a hop to
 *   another origin every payload header is dropped (only Idempotency-Key, and Content-Type
 *   while a body still goes along, are kept): the payload's headers were meant for its URL.
 * - `timeout_ms` bounds the whole call: every hop and the reading of the body.
 * - A parent job (one with children, run once they have ended) sends their outcomes in its
 *   body, bounded (http-fan-in.ts); GET and HEAD carry no body, so none.
 * - Header values and URL paths/queries are never logged nor put in errors: they may
 *   hold secrets. Logs and errors name the method and host:port only.
 */

/** Default cap on the stored result: 64 KiB of response body. */
export const DEFAULT_MAX_RESULT_BYTES = 64 * 1024;
/**
 * A Retry-After longer than this (1 hour) is cut to it: a job should not vanish for days,
 * and now + the delay must stay a valid DATETIME whatever date the server sends.
 */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
/** Redirect hops followed before the job fails. */
export const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface HttpHandlerOptions {
  /** `host` (any port), `host:port` or CIDR (`10.96.0.0/12`) entries, from SLUICE_HTTP_ALLOW. */
  readonly allow: readonly string[];
  /** Response bytes kept as the result; default DEFAULT_MAX_RESULT_BYTES. */
  readonly maxResultBytes?: number;
  /** PEM certificate(s) trusted besides Node's bundled CAs; tests use it for a self-signed server. */
  readonly ca?: string;
}

export function createHttpHandler(options: HttpHandlerOptions): Handler {
  const allowList = parseAllowList(options.allow);
  const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  if (!Number.isInteger(maxResultBytes) || maxResultBytes < 1) {
    throw new RangeError(`maxResultBytes must be a positive whole number (got ${maxResultBytes})`);
  }
  // One Agent per handler: its pool keeps connections alive between jobs (idle ones do not
  // hold the process open). A kept connection was checked when it was opened. undici is
  // loaded with the first http job: ~50 ms of every start-up otherwise.
  let client: Promise<Client> | undefined;
  const connect = (): Promise<Client> =>
    (client ??= import('undici').then(({ Agent, fetch }) => ({
      fetch,
      agent: new Agent({
        connect: { lookup: guardedLookup(allowList.admits), ...(options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca] }) },
      }),
    })));

  return async function http(job, ctx) {
    const req = parsePayload(job.payload);
    req.headers.set('idempotency-key', String(job.id));
    if (!allowList.allows(req.url)) {
      throw new PermanentJobError(`host ${hostPort(req.url)} is not in SLUICE_HTTP_ALLOW; no request was made`);
    }
    // A parent (released once its children ended) sends their outcomes along.
    if (job.childCount > 0 && req.method !== 'GET' && req.method !== 'HEAD') {
      req.body = await fanInBody(req.body, ctx.children());
      if (!req.headers.has('content-type')) req.headers.set('content-type', 'application/json');
    }
    let what = `${req.method} ${hostPort(req.url)}`;
    if (ctx.signal.aborted) throw transportError(ctx.signal.reason, what, ctx.signal, undefined, undefined);

    const timeout = req.timeoutMs === undefined ? undefined : AbortSignal.timeout(req.timeoutMs);
    const signal = timeout === undefined ? ctx.signal : AbortSignal.any([ctx.signal, timeout]);
    try {
      for (let hop = 0; ; hop++) {
        what = `${req.method} ${hostPort(req.url)}`;
        const res = await send(await connect(), req, signal, ctx);
        if (!REDIRECTS.has(res.status) || !res.headers.has('location')) {
          return await outcome(res, what, maxResultBytes);
        }
        const next = redirectTarget(res, req.url);
        const refused = redirectRefusal(req.url, next, allowList, hop);
        if (refused !== undefined || next === undefined) {
          throw new PermanentJobError(`${statusLine(res, what)} redirects ${refused ?? ''}; not followed${await excerpt(res)}`);
        }
        await res.body?.cancel();
        follow(req, res.status, next, job.id);
      }
    } catch (err) {
      throw transportError(err, what, ctx.signal, timeout, req.timeoutMs);
    }
  };
}

/** One hop: the fetch itself, logged at debug without headers, path or query. */
/** undici's fetch and this handler's Agent. */
interface Client {
  fetch: typeof import('undici').fetch;
  agent: Agent;
}

async function send({ fetch, agent }: Client, req: HttpRequest, signal: AbortSignal, ctx: JobContext): Promise<Response> {
  const started = performance.now();
  const fields = { method: req.method, host: hostPort(req.url) };
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'manual',
      signal,
      dispatcher: agent,
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

/** Why a redirect to `next` is not followed (the rest of "… redirects <why>"), or undefined to follow it. */
function redirectRefusal(from: URL, next: URL | undefined, allowList: AllowList, hop: number): string | undefined {
  if (next === undefined) return 'to a location that is not an http(s) URL';
  if (from.protocol === 'https:' && next.protocol === 'http:') return `from https to http (${hostPort(next)}), a downgrade`;
  if (!allowList.allows(next)) return `to host ${hostPort(next)}, which is not in SLUICE_HTTP_ALLOW`;
  if (hop >= MAX_REDIRECTS) return `more than ${MAX_REDIRECTS} times`;
  return undefined;
}

/** Rewrites the request for the next hop, as the fetch standard does for each status. */
function follow(req: HttpRequest, status: number, next: URL, jobId: number): void {
  if ((status === 303 && req.method !== 'HEAD') || ((status === 301 || status === 302) && req.method === 'POST')) {
    req.method = 'GET';
    req.body = undefined;
    req.headers.delete('content-type');
  }
  if (next.origin !== req.url.origin) {
    // Fetch drops only Authorization here; a payload's headers also carry API keys under any
    // name (X-Api-Key, X-Signature …), so none of them follows to another origin.
    const contentType = req.headers.get('content-type');
    req.headers = new Headers({ 'idempotency-key': String(jobId) });
    if (req.body !== undefined && contentType !== null) req.headers.set('content-type', contentType);
  }
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
  const refused = causeOf(err, AddressRefusedError);
  if (refused !== undefined) {
    return new PermanentJobError(`${what}: refused: ${refused.message}, ${howToAdmit(refused.addressClass)}; no connection was made`);
  }
  if (ctxSignal.aborted) {
    return new Error(`${what}: aborted (${reasonText(ctxSignal.reason)}); no status`, { cause: ctxSignal.reason });
  }
  if (timeout?.aborted) return new Error(`${what}: no complete response within timeout_ms=${timeoutMs}; no status`);
  return new Error(`${what}: no response (${causeText(err)}); no status`, { cause: err });
}

/** What would let a host name reach an address of this class: the end of a refusal's sentence. */
function howToAdmit(addressClass: AddressClass): string {
  if (addressClass === 'private' || addressClass === 'link-local') return 'in no CIDR entry of SLUICE_HTTP_ALLOW';
  return 'which a host name reaches only through a CIDR entry in SLUICE_HTTP_ALLOW of that one address (/32 or /128)';
}

/** The first error of class `type` in the `cause` chain of `err`. */
function causeOf<T extends Error>(err: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof type) return e;
  return undefined;
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
