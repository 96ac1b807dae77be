import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from '../node-http.js';
import type { AddressInfo } from 'node:net';
import { coerceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import { DashboardDb, isStatementTimeout, STATEMENT_LIMIT_MS } from './dashboard-db.js';
import { html } from './html.js';
import { refusal, tokenOf } from './request-guard.js';
import { BadRequest, getRoute, NotFound, postRoute, type Reply } from './routes.js';
import { layout, type PageContext } from './templates/layout.js';

export interface DashboardServerOptions {
  databaseUrl: string;
  port: number;
  host: string;
  actions: boolean;
  logger: Logger;
  metrics?: Metrics;
  /** Server-side limit of each statement (tests lower it). */
  statementLimitMs?: number;
  /** Recounts the active statuses (the snapshot publisher's), for pages that show them. */
  refreshCounts?: () => Promise<unknown>;
  /** Counts older than this are refreshed before a page that shows them (per replica). */
  countsFreshMs?: number;
}

/** Paths that show counts, or tell the page whether to reload them. */
const COUNTED_PATHS = new Set(['/', '/api/overview', '/api/version']);

/** Largest POST body read (an action form, or a bulk selection of ids). */
const MAX_BODY = 1024 * 1024;

/**
 * The dashboard (DESIGN.md "Dashboard"): server-rendered pages and their JSON under /api/,
 * on its own port and its own small database pool, served by every replica. Read-only
 * unless actions are on; actions are POSTs behind the cross-site checks of request-guard.
 * Every response carries `Server-Timing: app;dur=…` (the tests and the bench read it).
 */
export class DashboardServer {
  private server: Server | undefined;
  private readonly db: DashboardDb;
  private countsAt = -Infinity;
  private refreshing: Promise<unknown> | undefined;

  constructor(private readonly opts: DashboardServerOptions) {
    this.db = new DashboardDb({ url: opts.databaseUrl, metrics: opts.metrics, limitMs: opts.statementLimitMs });
  }

  /**
   * An idle cluster pays for counts only while someone looks: at most one recount per
   * `countsFreshMs` per replica, shared by concurrent requests. A failed recount leaves the
   * last snapshot (the page says when it was taken).
   */
  private async freshCounts(): Promise<void> {
    const { refreshCounts, countsFreshMs = 5000 } = this.opts;
    if (!refreshCounts || performance.now() - this.countsAt < countsFreshMs) return;
    this.refreshing ??= refreshCounts()
      .then(() => (this.countsAt = performance.now()))
      .catch((err: unknown) => this.opts.logger.warn({ err: coerceError(err).message }, 'dashboard counts not refreshed'))
      .finally(() => (this.refreshing = undefined));
    await this.refreshing;
  }

  /** Listens; resolves to the port (useful with port 0). */
  async start(): Promise<number> {
    if (this.server) return (this.server.address() as AddressInfo).port;
    const server = createServer((req, res) => {
      const started = process.hrtime.bigint();
      this.handle(req, res, started).catch((err: unknown) => {
        this.opts.logger.warn({ err: coerceError(err).message, path: req.url }, 'dashboard request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.db.end();
  }

  private async handle(req: IncomingMessage, res: ServerResponse, started: bigint): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const { token, setCookie } = tokenOf(req);
    const ctx: PageContext = { actions: this.opts.actions, token, path: url.pathname + url.search };
    const headers: Record<string, string> = {
      // No page of the dashboard may be framed or sniffed; scripts only from here.
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
      'cache-control': 'no-cache',
    };
    if (setCookie) headers['set-cookie'] = setCookie;
    const timing = (): string => `app;dur=${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)}`;

    if (url.pathname === '/assets/dashboard.css' || url.pathname === '/assets/dashboard.js') {
      const css = url.pathname.endsWith('.css');
      res.writeHead(200, { ...headers, 'content-type': css ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' });
      res.end(css ? DASHBOARD_CSS : DASHBOARD_JS);
      return;
    }

    let reply: Reply;
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        if (COUNTED_PATHS.has(url.pathname)) await this.freshCounts();
        reply = await getRoute(this.db, ctx, url, req);
      }
      else if (req.method === 'POST') reply = await this.post(req, url, ctx);
      else reply = { kind: 'error', status: 405, message: 'GET, HEAD or POST only' };
    } catch (err) {
      reply = this.failure(err);
    }
    this.write(res, reply, ctx, { ...headers, 'server-timing': timing() }, url.pathname.startsWith('/api/'));
  }

  private async post(req: IncomingMessage, url: URL, ctx: PageContext): Promise<Reply> {
    if (!this.opts.actions) return { kind: 'error', status: 403, message: 'actions are off (SLUICE_DASHBOARD_ACTIONS=false)' };
    const fields = await readForm(req);
    const flat = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v[0] ?? '']));
    const refused = refusal(req, flat);
    if (refused) return { kind: 'error', status: 403, message: refused };
    let out: { changed: number; message: string };
    try {
      out = await postRoute(this.db, url.pathname, fields);
    } catch (err) {
      if (err instanceof NotFound) return { kind: 'error', status: 404, message: 'no such action' };
      throw err;
    }
    this.opts.logger.info({ path: url.pathname, changed: out.changed }, 'dashboard action');
    const back = flat.return;
    // A form comes back to its page with a notice; a script gets JSON.
    if (back && back.startsWith('/') && !back.startsWith('//') && !(req.headers.accept ?? '').includes('application/json')) {
      const target = new URL(back, 'http://dashboard.invalid');
      target.searchParams.set('notice', out.message);
      return { kind: 'redirect', location: target.pathname + target.search };
    }
    void ctx;
    return { kind: 'json', body: { ok: true, ...out } };
  }

  private failure(err: unknown): Reply {
    if (err instanceof BadRequest) return { kind: 'error', status: 400, message: err.message };
    if (isStatementTimeout(err)) {
      return { kind: 'error', status: 503, message: `the database took longer than ${(this.opts.statementLimitMs ?? STATEMENT_LIMIT_MS) / 1000} s for this page; narrow the filter (a queue, a status)` };
    }
    const message = coerceError(err).message;
    this.opts.logger.warn({ err: message }, 'dashboard query failed');
    return { kind: 'error', status: 503, message: `database error: ${message}` };
  }

  private write(res: ServerResponse, reply: Reply, ctx: PageContext, headers: Record<string, string>, api: boolean): void {
    switch (reply.kind) {
      case 'redirect':
        res.writeHead(303, { ...headers, location: reply.location }).end();
        return;
      case 'json': {
        const h = { ...headers, 'content-type': 'application/json; charset=utf-8', ...(reply.etag ? { etag: reply.etag } : {}) };
        if (reply.status === 304) {
          res.writeHead(304, h).end();
          return;
        }
        res.writeHead(reply.status ?? 200, h).end(JSON.stringify(reply.body));
        return;
      }
      case 'html':
        res.writeHead(reply.status ?? 200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(reply.body.text);
        return;
      case 'error':
        if (api) {
          res.writeHead(reply.status, { ...headers, 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: reply.message }));
        } else {
          const page = layout(ctx, `Error ${reply.status}`, html`<p role="alert">${reply.message}</p><p><a href="/">Back to the overview</a></p>`, null);
          res.writeHead(reply.status, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(page.text);
        }
    }
  }
}

/** An urlencoded or JSON body, each field as a list of values; bounded. */
async function readForm(req: IncomingMessage): Promise<Record<string, string[]>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new BadRequest('request body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const out: Record<string, string[]> = {};
  if ((req.headers['content-type'] ?? '').includes('application/json') && text.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new BadRequest('body is not JSON');
    }
    if (typeof parsed !== 'object' || parsed === null) throw new BadRequest('body must be a JSON object');
    for (const [k, v] of Object.entries(parsed)) out[k] = (Array.isArray(v) ? v : [v]).map(String);
    return out;
  }
  for (const [k, v] of new URLSearchParams(text)) (out[k] ??= []).push(v);
  return out;
}
