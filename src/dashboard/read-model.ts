/**
 * What the dashboard shows, read from the database: the overview, job lists and one job
 * with its family. Pages and the JSON API render these; nothing here writes.
 */
import type { Executor } from '../db/database.js';
import {
  jobsListAll,
  jobsListRange,
  jobsMaxId,
  jobsSearchRecent,
  jobsSelectChildren,
  jobsSelectDetail,
  jobsSelectParentId,
  MAX_LISTED_PRIORITIES,
  statusQueueRanges,
  type JobDetailRow,
  type JobListRow,
} from '../db/queries/dashboard-jobs.js';
import {
  countsSelect,
  marksSelect,
  queuesSelect,
  schedulesSelect,
  serverNow,
  throughputSelectRecent,
  workersSelect,
  type ScheduleRow,
  type WorkerRow,
} from '../db/queries/dashboard-overview.js';
import { jobsQueuesWithStatus } from '../db/queries/dashboard-snapshot.js';
import { ACTIVE_STATUSES, ALL_STATUSES, FINAL_STATUSES } from '../db/queries/job-statuses.js';
import { query } from './html.js';

/** Rows per list page unless `limit` asks otherwise (1–200). */
export const PAGE_SIZE = 50;
/** Payload search reads only the newest this many ids. */
export const SEARCH_WINDOW = 100_000;
/** A list for one status across queues merges at most this many queues. */
export const MAX_MERGED_QUEUES = 50;
/** A schedule whose next tick is overdue by more than this is shown late. */
export const LATE_AFTER_MS = 30_000;
/** Minutes on the throughput chart. */
export const CHART_MINUTES = 60;

export interface Count {
  n: number;
  capped: boolean;
  /** "12", or "1,000,000+" at the cap. */
  label: string;
}

export interface QueueSummary {
  name: string;
  paused: boolean;
  ratePerSec: number | null;
  concurrency: number | null;
  /** Active statuses, from the leader's snapshot. */
  counts: Record<string, Count>;
  /** Final statuses over the last hour, from the throughput minutes. */
  lastHour: Record<string, number>;
}

export interface ThroughputMinute {
  minute: string;
  done: number;
  failed: number;
  cancelled: number;
}

export interface Overview {
  serverNow: string;
  /** When the leader last computed the counts (null: never yet). */
  computedAt: string | null;
  /** Worker id of the leader that computed them. */
  leader: string | null;
  queues: QueueSummary[];
  throughput: ThroughputMinute[];
  workers: WorkerRow[];
  schedules: Array<ScheduleRow & { late: boolean }>;
}

function countOf(n: number, capped: boolean): Count {
  return { n, capped, label: capped ? `${n.toLocaleString('en-US')}+` : n.toLocaleString('en-US') };
}

/** Everything on `/`: a fixed number of small reads, none over `jobs`. */
export async function readOverview(db: Executor): Promise<Overview> {
  const [counts, marks, controls, minutes, workers, schedules, now] = await Promise.all([
    countsSelect(db),
    marksSelect(db),
    queuesSelect(db, 500),
    throughputSelectRecent(db, CHART_MINUTES),
    workersSelect(db, 200),
    schedulesSelect(db, 200),
    serverNow(db),
  ]);
  const queues = new Map<string, QueueSummary>();
  const queue = (name: string): QueueSummary => {
    let q = queues.get(name);
    if (!q) {
      q = { name, paused: false, ratePerSec: null, concurrency: null, counts: {}, lastHour: {} };
      for (const s of ACTIVE_STATUSES) q.counts[s] = countOf(0, false);
      for (const s of FINAL_STATUSES) q.lastHour[s] = 0;
      queues.set(name, q);
    }
    return q;
  };
  for (const c of controls) Object.assign(queue(c.name), { paused: Boolean(c.paused), ratePerSec: c.rate_per_sec, concurrency: c.concurrency });
  for (const c of counts) queue(c.queue).counts[c.status] = countOf(c.n, c.capped);
  const byMinute = new Map<string, ThroughputMinute>();
  for (const m of minutes) {
    const q = queue(m.queue);
    q.lastHour[m.status] = (q.lastHour[m.status] ?? 0) + m.n;
    const row = byMinute.get(m.minute) ?? { minute: m.minute, done: 0, failed: 0, cancelled: 0 };
    if (m.status === 'done' || m.status === 'failed' || m.status === 'cancelled') row[m.status] += m.n;
    byMinute.set(m.minute, row);
  }
  const countsMark = marks.find((m) => m.name === 'counts');
  return {
    serverNow: now.now,
    computedAt: countsMark?.at ?? null,
    leader: countsMark?.worker ?? null,
    queues: [...queues.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    throughput: fillMinutes(now.now, byMinute),
    workers,
    schedules: schedules.map((s) => ({ ...s, late: !s.paused && s.late_ms !== null && s.late_ms > LATE_AFTER_MS })),
  };
}

/** One entry per minute of the chart, zeros where nothing finished. */
function fillMinutes(now: string, byMinute: Map<string, ThroughputMinute>): ThroughputMinute[] {
  const end = Date.parse(`${now.slice(0, 16).replace(' ', 'T')}:00Z`);
  const out: ThroughputMinute[] = [];
  for (let i = CHART_MINUTES - 1; i >= 0; i--) {
    const minute = new Date(end - i * 60_000).toISOString().slice(0, 19).replace('T', ' ');
    out.push(byMinute.get(minute) ?? { minute, done: 0, failed: 0, cancelled: 0 });
  }
  return out;
}

export interface ListFilter {
  queue?: string;
  status?: string;
  /** Payload text: searches the newest SEARCH_WINDOW ids only. */
  q?: string;
  /** Keyset: ids below this one (with `at`, rows below (at, before) in run_at order). */
  before?: number;
  /** Keyset of a list by status or queue: the run_at of the previous page's last row. */
  at?: string;
  limit: number;
}

export interface JobList {
  items: JobListRow[];
  /** The next page's path, or null on the last page. */
  next: string | null;
  filter: ListFilter;
  /** Said when a list could not be complete (search window, merged queues). */
  notes: string[];
}

/**
 * Jobs newest first, paged by key (no OFFSET). The whole table and payload search read the
 * primary key, by id. A list by status or queue reads ranges of jobs_claim
 * (statusQueueRanges), by run_at then id (for a job that was not scheduled, run_at is when
 * it was inserted); lists that span several ranges are merged here, each range read at
 * most one page.
 */
export async function readJobList(db: Executor, filter: ListFilter, basePath: string): Promise<JobList> {
  const { limit } = filter;
  const before = filter.before ?? Number.MAX_SAFE_INTEGER;
  const notes: string[] = [];
  let rows: JobListRow[];
  let byRunAt = false;
  if (filter.q) {
    const lowest = Math.max(0, (await jobsMaxId(db)) - SEARCH_WINDOW);
    rows = await jobsSearchRecent(db, { text: filter.q, status: filter.status, queue: filter.queue, lowestId: lowest, beforeId: before, limit: limit + 1 });
    notes.push(`Payload search looks at the newest ${SEARCH_WINDOW.toLocaleString('en-US')} jobs only (ids above ${lowest}).`);
  } else if (!filter.status && !filter.queue) {
    rows = await jobsListAll(db, before, limit + 1);
  } else {
    byRunAt = true;
    const statuses = filter.status ? [filter.status] : [...ALL_STATUSES];
    const pairs: Array<[string, string]> = [];
    for (const status of statuses) {
      let queues = filter.queue ? [filter.queue] : await jobsQueuesWithStatus(db, status, MAX_MERGED_QUEUES + 1);
      if (queues.length > MAX_MERGED_QUEUES) {
        notes.push(`Only the first ${MAX_MERGED_QUEUES} queues with ${status} jobs are listed; pick a queue to see the others.`);
        queues = queues.slice(0, MAX_MERGED_QUEUES);
      }
      for (const queue of queues) pairs.push([status, queue]);
    }
    const found = await Promise.all(pairs.map(([s, q]) => statusQueueRanges(db, s, q)));
    found.forEach(({ complete }, i) => {
      if (!complete) notes.push(`Queue ${pairs[i]![1]} has pending jobs of more than ${MAX_LISTED_PRIORITIES} priorities; those of the first ${MAX_LISTED_PRIORITIES} are listed.`);
    });
    const ranges = found.flatMap((f) => f.ranges);
    const cursor = filter.at !== undefined && filter.before !== undefined ? { runAt: filter.at, id: filter.before } : undefined;
    const pages = await Promise.all(ranges.map((range) => jobsListRange(db, range, cursor, limit + 1)));
    rows = pages.flat().sort(newestFirst);
  }
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const next =
    rows.length > limit && last
      ? `${basePath}${query({
          queue: filter.queue,
          status: filter.status,
          q: filter.q,
          limit: filter.limit === PAGE_SIZE ? undefined : filter.limit,
          at: byRunAt ? last.run_at : undefined,
          before: last.id,
        })}`
      : null;
  return { items, next, filter, notes };
}

/** (run_at, id) descending; run_at as the server writes it sorts as text. */
function newestFirst(a: JobListRow, b: JobListRow): number {
  if (a.run_at !== b.run_at) return a.run_at < b.run_at ? 1 : -1;
  return b.id - a.id;
}

export interface JobView {
  job: JobDetailRow;
  parent: JobListRow | null;
  children: { items: JobListRow[]; next: string | null };
}

/** One job, its parent and a page of its children (after `childrenAfter`, in id order). */
export async function readJob(db: Executor, id: number, childrenAfter: number, limit: number): Promise<JobView | undefined> {
  const job = await jobsSelectDetail(db, id);
  if (!job) return undefined;
  const [parentRow, kids] = await Promise.all([
    job.parent_id === null ? Promise.resolve(undefined) : jobsSelectDetail(db, job.parent_id),
    jobsSelectChildren(db, { parentId: id, afterId: childrenAfter, limit: limit + 1 }),
  ]);
  const items = kids.slice(0, limit);
  const last = items[items.length - 1];
  return {
    job: parseJson(job),
    parent: parentRow ? listRowOf(parentRow) : null,
    children: { items, next: kids.length > limit && last ? `/jobs/${id}${query({ children_after: last.id })}` : null },
  };
}

/** payload and result come as text, cut at DETAIL_TEXT_LIMIT; parsed back unless cut. */
function parseJson(job: JobDetailRow): JobDetailRow {
  const parse = (v: unknown): { value: unknown; cut: boolean } => {
    if (typeof v !== 'string') return { value: v, cut: false };
    try {
      return { value: JSON.parse(v) as unknown, cut: false };
    } catch {
      return { value: v, cut: true };
    }
  };
  const payload = parse(job.payload);
  const result = parse(job.result);
  return { ...job, payload: payload.value, result: result.value, payload_cut: payload.cut, result_cut: result.cut };
}

function listRowOf(j: JobDetailRow): JobListRow {
  const { id, queue, type, status, priority, attempts, max_attempts, paused, parent_id, run_at, created_at, started_at, finished_at, progress, worker } = j;
  return { id, queue, type, status, priority, attempts, max_attempts, paused, parent_id, run_at, created_at, started_at, finished_at, progress, worker, error: null };
}

export interface TreeNode {
  job: JobListRow;
  children: TreeNode[];
  /** More children than shown: the job's own page pages them. */
  more: boolean;
}

/** Levels walked up to find a workflow's root, and nodes shown at most. */
const MAX_DEPTH = 32;
const MAX_NODES = 500;
const CHILDREN_PER_NODE = 50;

/** The workflow a job belongs to: its root, then breadth-first, bounded in nodes and per node. */
export async function readTree(db: Executor, id: number): Promise<{ root: TreeNode; focus: number; truncated: boolean } | undefined> {
  let rootId = id;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const parent = await jobsSelectParentId(db, rootId);
    if (parent === undefined) return depth === 0 ? undefined : { root: await leaf(db, rootId), focus: id, truncated: true };
    if (parent === null) break;
    rootId = parent;
  }
  const root = await leaf(db, rootId);
  let shown = 1;
  let truncated = false;
  let level = [root];
  while (level.length > 0 && !truncated) {
    const nextLevel: TreeNode[] = [];
    for (const node of level) {
      if (shown >= MAX_NODES) {
        truncated = true;
        break;
      }
      const kids = await jobsSelectChildren(db, { parentId: node.job.id, afterId: 0, limit: CHILDREN_PER_NODE + 1 });
      node.more = kids.length > CHILDREN_PER_NODE;
      for (const k of kids.slice(0, Math.min(CHILDREN_PER_NODE, MAX_NODES - shown))) {
        const child = { job: k, children: [], more: false };
        node.children.push(child);
        nextLevel.push(child);
        shown++;
      }
    }
    level = nextLevel;
  }
  return { root, focus: id, truncated };
}

async function leaf(db: Executor, id: number): Promise<TreeNode> {
  const job = await jobsSelectDetail(db, id);
  if (!job) throw new Error(`job ${id} vanished`);
  return { job: listRowOf(job), children: [], more: false };
}
