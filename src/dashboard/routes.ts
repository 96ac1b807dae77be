import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { jobsActOnIds, jobsActOnRange, JOB_ACTIONS, queuesSetPaused, type JobAction } from '../db/queries/dashboard-actions.js';
import { jobsSelectVersion } from '../db/queries/dashboard-jobs.js';
import { countsSelect, marksSelect, schedulesSelect, throughputSelectRecent, workersSelect } from '../db/queries/dashboard-overview.js';
import { isStatus } from '../db/queries/job-statuses.js';
import type { Executor } from '../db/database.js';
import { PAGE_SIZE, LATE_AFTER_MS, readJob, readJobList, readOverview, readTree, type ListFilter } from './read-model.js';
import type { SafeHtml } from './html.js';
import { jobPage, treePage } from './templates/job-page.js';
import { jobsPage } from './templates/jobs-page.js';
import type { PageContext } from './templates/layout.js';
import { overviewPage } from './templates/overview-page.js';
import { schedulesPage } from './templates/schedules-page.js';
import { workersPage } from './templates/workers-page.js';

/** What a route answers; the server writes it. */
export type Reply =
  | { kind: 'html'; status?: number; body: SafeHtml }
  | { kind: 'json'; status?: number; body: unknown; etag?: string }
  | { kind: 'redirect'; location: string }
  | { kind: 'error'; status: number; message: string };

/** Rows changed per UPDATE of a bulk action, and chunks per request at most. */
export const BULK_CHUNK = 1000;
const BULK_MAX_CHUNKS = 100;

export class BadRequest extends Error {}

/** Reads the query's list filter; bad values are the caller's mistake (400). */
function listFilter(params: URLSearchParams): ListFilter {
  const status = params.get('status') || undefined;
  if (status !== undefined && !isStatus(status)) throw new BadRequest(`unknown status "${status}"`);
  const queue = params.get('queue') || undefined;
  if (queue !== undefined && queue.length > 64) throw new BadRequest('queue names are at most 64 characters');
  const q = params.get('q')?.trim() || undefined;
  if (q !== undefined && q.length > 200) throw new BadRequest('search text is at most 200 characters');
  const before = params.get('before') ? positiveInt(params.get('before')!, 'before') : undefined;
  const at = params.get('at') || undefined;
  if (at !== undefined && !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$/.test(at)) throw new BadRequest('at must be a time like 2026-01-31 12:00:00.000');
  const limit = params.get('limit') ? positiveInt(params.get('limit')!, 'limit') : PAGE_SIZE;
  if (limit > 200) throw new BadRequest('limit is at most 200');
  return { status, queue, q, before, at, limit };
}

function positiveInt(raw: string, what: string): number {
  if (!/^\d{1,19}$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) throw new BadRequest(`${what} must be a positive whole number`);
  return Number(raw);
}

/** GET routes: pages (HTML) and their JSON twins under /api/. */
export async function getRoute(db: Executor, ctx: PageContext, url: URL, req: IncomingMessage): Promise<Reply> {
  const path = url.pathname;
  const flash = url.searchParams.get('notice') ?? undefined;
  if (path === '/' || path === '/api/overview') {
    const o = await readOverview(db);
    return path === '/' ? { kind: 'html', body: overviewPage(ctx, o, flash) } : { kind: 'json', body: o };
  }
  if (path === '/jobs' || path === '/api/jobs') {
    const api = path === '/api/jobs';
    const list = await readJobList(db, listFilter(url.searchParams), path);
    return api ? { kind: 'json', body: { items: list.items, next: list.next, notes: list.notes } } : { kind: 'html', body: jobsPage(ctx, list, flash) };
  }
  const job = /^\/(api\/)?jobs\/(\d+)(\/tree)?$/.exec(path);
  if (job) {
    const id = positiveInt(job[2]!, 'job id');
    if (job[3]) {
      const tree = await readTree(db, id);
      if (!tree) return { kind: 'error', status: 404, message: `no job ${id}` };
      return job[1] ? { kind: 'json', body: tree } : { kind: 'html', body: treePage(ctx, tree.root, id, tree.truncated) };
    }
    const after = url.searchParams.get('children_after') ? positiveInt(url.searchParams.get('children_after')!, 'children_after') : 0;
    const view = await readJob(db, id, after, PAGE_SIZE);
    if (!view) return { kind: 'error', status: 404, message: `no job ${id}` };
    return job[1] ? { kind: 'json', body: view } : { kind: 'html', body: jobPage(ctx, view, flash) };
  }
  if (path === '/schedules' || path === '/api/schedules') {
    const rows = (await schedulesSelect(db, 1000)).map((s) => ({ ...s, late: !s.paused && s.late_ms !== null && s.late_ms > LATE_AFTER_MS }));
    return path === '/schedules' ? { kind: 'html', body: schedulesPage(ctx, rows) } : { kind: 'json', body: { items: rows } };
  }
  if (path === '/workers' || path === '/api/workers') {
    const [workers, marks] = await Promise.all([workersSelect(db, 1000), marksSelect(db)]);
    const leader = marks.find((m) => m.name === 'counts')?.worker ?? null;
    return path === '/workers' ? { kind: 'html', body: workersPage(ctx, workers, leader) } : { kind: 'json', body: { items: workers, leader } };
  }
  if (path === '/api/version') return version(db, url, req);
  return { kind: 'error', status: 404, message: 'no such page' };
}

/**
 * The refresh poll: a digest of what the pages show that changes (the snapshot's
 * numbers, the last minutes' throughput, the set of replicas, one job's row). Answered
 * 304 while it stays the same; a handful of tiny reads, never over history.
 */
async function version(db: Executor, url: URL, req: IncomingMessage): Promise<Reply> {
  const jobId = url.searchParams.get('job');
  const [counts, minutes, workers, job] = await Promise.all([
    countsSelect(db),
    throughputSelectRecent(db, 2),
    workersSelect(db, 1000),
    jobId ? jobsSelectVersion(db, positiveInt(jobId, 'job')) : Promise.resolve(''),
  ]);
  const digest = createHash('sha1')
    .update(JSON.stringify([counts.map((c) => [c.queue, c.status, c.n]), minutes, workers.map((w) => w.id), job]))
    .digest('hex')
    .slice(0, 20);
  const etag = `"${digest}"`;
  if (req.headers['if-none-match'] === etag) return { kind: 'json', status: 304, body: null, etag };
  return { kind: 'json', body: { version: digest }, etag };
}

/** POST routes: the actions. Only reached when SLUICE_DASHBOARD_ACTIONS=true and the request guard passed. */
export async function postRoute(db: Executor, path: string, fields: Record<string, string[]>): Promise<{ changed: number; message: string }> {
  const one = /^\/api\/jobs\/(\d+)\/(\w+)$/.exec(path);
  if (one) {
    const action = jobAction(one[2]!);
    const id = positiveInt(one[1]!, 'job id');
    const changed = await jobsActOnIds(db, action, [id], 'dashboard');
    return { changed, message: changed ? `Job ${id}: ${action} done.` : `Job ${id}: nothing to ${action} (its state does not allow it).` };
  }
  const queue = /^\/api\/queues\/([^/]+)\/(pause|resume)$/.exec(path);
  if (queue) {
    const name = decodeURIComponent(queue[1]!);
    if (name.length === 0 || name.length > 64) throw new BadRequest('queue names are 1 to 64 characters');
    await queuesSetPaused(db, name, queue[2] === 'pause');
    return { changed: 1, message: `Queue ${name}: ${queue[2] === 'pause' ? 'paused' : 'resumed'}.` };
  }
  if (path === '/api/jobs/bulk') return bulk(db, fields);
  throw new NotFound();
}

export class NotFound extends Error {}

function jobAction(raw: string): JobAction {
  if (!(JOB_ACTIONS as readonly string[]).includes(raw)) throw new NotFound();
  return raw as JobAction;
}

/**
 * A bulk action in chunks of BULK_CHUNK rows, each its own short UPDATE (no long lock):
 * on the selected ids, or (all=1) on every job of one queue and status.
 */
async function bulk(db: Executor, fields: Record<string, string[]>): Promise<{ changed: number; message: string }> {
  const action = jobAction(fields.action?.[0] ?? '');
  let changed = 0;
  if (fields.all?.[0] === '1') {
    const status = fields.status?.[0] ?? '';
    const queue = fields.queue?.[0] ?? '';
    if (!isStatus(status) || !queue) throw new BadRequest('a bulk action on all matching jobs needs a queue and a status');
    let chunks = 0;
    for (let n = BULK_CHUNK; n === BULK_CHUNK && chunks < BULK_MAX_CHUNKS; chunks++) {
      n = await jobsActOnRange(db, action, status, queue, BULK_CHUNK, 'dashboard');
      changed += n;
    }
    const more = chunks === BULK_MAX_CHUNKS ? ' There may be more: apply again.' : '';
    return { changed, message: `${action}: ${changed} ${status} jobs of ${queue}.${more}` };
  }
  const ids = (fields.ids ?? []).flatMap((s) => s.split(',')).filter((s) => s.trim() !== '').map((s) => positiveInt(s.trim(), 'ids'));
  if (ids.length === 0) throw new BadRequest('select at least one job');
  if (ids.length > BULK_CHUNK * BULK_MAX_CHUNKS) throw new BadRequest(`at most ${BULK_CHUNK * BULK_MAX_CHUNKS} ids at once`);
  for (let i = 0; i < ids.length; i += BULK_CHUNK) changed += await jobsActOnIds(db, action, ids.slice(i, i + BULK_CHUNK), 'dashboard');
  return { changed, message: `${action}: ${changed} of ${ids.length} selected jobs.` };
}
