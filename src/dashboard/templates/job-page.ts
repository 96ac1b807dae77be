import type { JobDetailRow } from '../../db/queries/dashboard-jobs.js';
import { html, type SafeHtml } from '../html.js';
import type { JobView, TreeNode } from '../read-model.js';
import { jobsTable } from './jobs-page.js';
import { actionButton, layout, statusBadge, type PageContext } from './layout.js';

const WORKFLOW_TODO: Record<number, string> = {
  1: 'release (waiting → pending) due',
  2: 'fail fast due (a child failed)',
  3: 'cancel of a waiting job due',
  4: 'cancel of a pending child due',
  5: 'cancel to push to the children',
  6: 'pause to push to the children',
};

function pretty(value: unknown, cut: boolean | undefined): string {
  if (value === null || value === undefined) return 'NULL';
  if (cut && typeof value === 'string') return `${value}\n… (cut: longer than the page shows; read it with SQL)`;
  return JSON.stringify(value, null, 2);
}

function row(label: string, value: string | number | null | undefined): SafeHtml {
  return html`<tr><th scope="row">${label}</th><td>${value === null || value === undefined ? '—' : String(value)}</td></tr>`;
}

function actions(ctx: PageContext, j: JobDetailRow): SafeHtml {
  const final = ['done', 'failed', 'cancelled'].includes(j.status);
  const base = `/api/jobs/${j.id}`;
  return html`<div class="actions">${[
    !final && !j.cancel_requested_at ? actionButton(ctx, `${base}/cancel`, 'Cancel') : '',
    j.status === 'failed' || j.status === 'cancelled' ? actionButton(ctx, `${base}/retry`, 'Retry') : '',
    !final && !j.paused ? actionButton(ctx, `${base}/pause`, 'Pause') : '',
    j.paused ? actionButton(ctx, `${base}/resume`, 'Resume') : '',
    j.status === 'waiting' && j.approval_required && !j.approved_at ? actionButton(ctx, `${base}/approve`, 'Approve') : '',
  ]}</div>`;
}

/** `/jobs/ID`: everything about one job, its parent and its children (paged). */
export function jobPage(ctx: PageContext, v: JobView, flash?: string): SafeHtml {
  const j = v.job;
  const workflow = j.parent_id !== null || j.deps_total !== null || v.children.items.length > 0;
  const body = html`
<p>${statusBadge(j.status)}${j.paused ? html` <span class="badge">paused</span>` : ''} <a href="/jobs/${j.id}/tree">Workflow tree</a></p>
${actions(ctx, j)}
<div class="grid">
<section aria-labelledby="facts-h"><h2 id="facts-h">Job</h2><table class="facts"><tbody>
${row('queue', j.queue)}${row('type', j.type)}${row('priority', j.priority)}${row('attempts', `${j.attempts} of ${j.max_attempts}`)}
${row('worker', j.worker)}${row('progress', j.progress === null ? null : `${j.progress}%`)}${row('timeout_ms', j.timeout_ms)}
${row('concurrency_key', j.concurrency_key)}${row('unique_key', j.unique_key)}${row('schedule', j.schedule_id === null ? null : `${j.schedule_id} (tick ${j.scheduled_for ?? ''})`)}
</tbody></table></section>
<section aria-labelledby="times-h"><h2 id="times-h">Timings</h2><table class="facts"><tbody>
${row('created_at', j.created_at)}${row('run_at', j.run_at)}${row('queued_at', j.queued_at)}${row('started_at', j.started_at)}
${row('finished_at', j.finished_at)}${row('cancel_requested_at', j.cancel_requested_at)}${row('cancelled_at', j.cancelled_at)}${row('updated_at', j.updated_at)}
</tbody></table></section>
</div>
${j.error ? html`<section aria-labelledby="error-h"><h2 id="error-h">Error</h2><pre class="error">${j.error}</pre></section>` : ''}
<section aria-labelledby="payload-h"><h2 id="payload-h">Payload</h2><pre>${pretty(j.payload, j.payload_cut)}</pre></section>
<section aria-labelledby="result-h"><h2 id="result-h">Result</h2><pre>${pretty(j.result, j.result_cut)}</pre></section>
${
  workflow
    ? html`<section aria-labelledby="wf-h"><h2 id="wf-h">Workflow</h2><table class="facts"><tbody>
${v.parent ? html`<tr><th scope="row">parent</th><td><a href="/jobs/${v.parent.id}">${v.parent.id}</a> ${v.parent.type} ${statusBadge(v.parent.status)}</td></tr>` : row('parent', j.parent_id)}
${row('children', j.deps_total === null ? `${j.deps_done + j.deps_failed} ended; set still open (deps_total NULL)` : `${j.deps_done} done, ${j.deps_failed} failed of ${j.deps_total}`)}
${row('on_child_failure', j.on_child_failure)}${row('approval', j.approval_required ? (j.approved_at ? `approved by ${j.approved_by ?? '?'} at ${j.approved_at}` : 'required, not given') : 'not required')}
${row('wait_deadline', j.wait_deadline)}${row('suspended_at', j.suspended_at)}${row('counted into parent as', j.counted_as)}
${row('cancel cascaded', j.cancel_cascaded_at)}${row('pause cascaded', j.pause_cascaded ? 'paused' : 'not paused')}${row('pending leader work', j.workflow_todo === null ? 'none' : WORKFLOW_TODO[j.workflow_todo] ?? j.workflow_todo)}
</tbody></table>
<h3>Children</h3>
${jobsTable(ctx, v.children.items, 'Children in id order')}
${v.children.next ? html`<nav aria-label="Children pages" class="pager"><a href="${v.children.next}" rel="next">More children →</a></nav>` : ''}
</section>`
    : ''
}`;
  return layout(ctx, `Job ${j.id}`, body, `/api/version?job=${j.id}`, flash);
}

function node(n: TreeNode, focus: number): SafeHtml {
  const j = n.job;
  return html`<li><a href="/jobs/${j.id}"${j.id === focus ? html` aria-current="true" class="focus"` : ''}>${j.id} ${j.type}</a> ${statusBadge(j.status)}${
    n.children.length > 0 || n.more
      ? html`<ul>${n.children.map((c) => node(c, focus))}${n.more ? html`<li><a href="/jobs/${j.id}">more children…</a></li>` : ''}</ul>`
      : ''
  }</li>`;
}

/** `/jobs/ID/tree`: the workflow the job belongs to, from its root. */
export function treePage(ctx: PageContext, root: TreeNode, focus: number, truncated: boolean): SafeHtml {
  const body = html`<p>From the root job down; job ${focus} is marked.${truncated ? ' Only part of the tree is shown (it is large); each job page pages its children.' : ''}</p>
<ul class="tree">${node(root, focus)}</ul>`;
  return layout(ctx, `Workflow of job ${focus}`, body, `/api/version?job=${focus}`);
}
