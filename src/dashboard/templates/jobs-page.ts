import type { JobListRow } from '../../db/queries/dashboard-jobs.js';
import { ALL_STATUSES } from '../../db/queries/job-statuses.js';
import { html, query, type SafeHtml } from '../html.js';
import { PAGE_SIZE, type JobList } from '../read-model.js';
import { layout, statusBadge, type PageContext } from './layout.js';

/** Rows of jobs; with actions on, a checkbox per row feeds the bulk form `formId`. */
export function jobsTable(ctx: PageContext, rows: readonly JobListRow[], caption: string, formId?: string): SafeHtml {
  if (rows.length === 0) return html`<p>No jobs here.</p>`;
  const select = ctx.actions && formId !== undefined;
  return html`<div class="scroll"><table class="jobs"><caption>${caption}</caption>
<thead><tr>${select ? html`<th scope="col"><span class="visually-hidden">Select</span></th>` : ''}<th scope="col" class="num">ID</th><th scope="col">Queue</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Created</th><th scope="col">Finished</th><th scope="col">Error</th></tr></thead>
<tbody>${rows.map(
    (j) => html`<tr>${select ? html`<td><input type="checkbox" name="ids" value="${j.id}" form="${formId}" aria-label="Select job ${j.id}"></td>` : ''}
<td class="num"><a href="/jobs/${j.id}">${j.id}</a></td><td>${j.queue}</td><td>${j.type}</td><td>${statusBadge(j.status)}${j.paused ? html` <span class="badge">paused</span>` : ''}</td>
<td class="num">${j.attempts}/${j.max_attempts}</td><td>${j.created_at}</td><td>${j.finished_at ?? ''}</td><td class="error">${j.error ?? ''}</td></tr>`,
  )}</tbody></table></div>`;
}

/** `/jobs?queue=Q&status=S`: newest first, paged by id. */
export function jobsPage(ctx: PageContext, list: JobList, flash?: string): SafeHtml {
  const f = list.filter;
  const title = `Jobs${f.queue ? ` in ${f.queue}` : ''}${f.status ? ` (${f.status})` : ''}`;
  const bulk = ctx.actions
    ? html`<form id="bulk" class="bulk" method="post" action="/api/jobs/bulk">
<input type="hidden" name="token" value="${ctx.token}"><input type="hidden" name="return" value="${ctx.path}">
<label for="bulk-action">With the selected jobs</label>
<select id="bulk-action" name="action"><option value="cancel">cancel</option><option value="retry">retry</option><option value="pause">pause</option><option value="resume">resume</option><option value="approve">approve</option></select>
<button type="submit">Apply</button>
${
  f.queue && f.status
    ? html`<span class="sub">or to every ${f.status} job of ${f.queue} (in chunks of 1,000):</span>
<input type="hidden" name="queue" value="${f.queue}"><input type="hidden" name="status" value="${f.status}">
<button type="submit" name="all" value="1">Apply to all matching</button>`
    : ''
}
</form>`
    : '';
  const body = html`
<form class="filters" method="get" action="/jobs" role="search">
<label>Queue <input name="queue" value="${f.queue ?? ''}" size="16"></label>
<label>Status <select name="status"><option value="">any</option>${ALL_STATUSES.map(
    (s) => html`<option${s === f.status ? html` selected` : ''}>${s}</option>`,
  )}</select></label>
<label>Payload contains <input name="q" value="${f.q ?? ''}" size="20"></label>
<button type="submit">Show</button>
</form>
${list.notes.map((n) => html`<p class="note">${n}</p>`)}
${bulk}
${jobsTable(ctx, list.items, `${list.items.length} jobs, newest first`, 'bulk')}
<nav aria-label="Pages" class="pager">${f.before !== undefined ? html`<a href="/jobs${query({ queue: f.queue, status: f.status, q: f.q, limit: f.limit === PAGE_SIZE ? undefined : f.limit })}">Newest</a>` : ''}
${list.next ? html`<a href="${list.next}" rel="next">Older jobs →</a>` : html`<span class="sub">End of the list.</span>`}</nav>`;
  return layout(ctx, title, body, `/api/version`, flash);
}
