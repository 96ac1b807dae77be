import type { ScheduleRow } from '../../db/queries/dashboard-overview.js';
import { html, type SafeHtml } from '../html.js';
import { layout, type PageContext } from './layout.js';

/** Schedules with last and next tick (UTC) and whether the next one is late. */
export function schedulesTable(schedules: ReadonlyArray<ScheduleRow & { late: boolean }>): SafeHtml {
  if (schedules.length === 0) return html`<p>No schedules. Insert one into <code>job_schedules</code>.</p>`;
  return html`<div class="scroll"><table><caption>Recurring schedules (times in UTC)</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Cron</th><th scope="col">Queue / type</th><th scope="col">Last run</th><th scope="col">Next run</th><th scope="col">State</th></tr></thead>
<tbody>${schedules.map(
    (s) => html`<tr><th scope="row">${s.name}</th><td><code>${s.cron}</code> <span class="sub">${s.timezone}</span></td><td>${s.queue} / ${s.type}</td>
<td>${s.last_run_at ?? '—'}${s.last_job_id !== null ? html` (<a href="/jobs/${s.last_job_id}">job ${s.last_job_id}</a>)` : ''}</td>
<td>${s.next_run_at ?? '—'}</td>
<td>${s.paused ? html`<span class="badge">paused</span>` : s.late ? html`<span class="badge badge-bad">late ${Math.round((s.late_ms ?? 0) / 1000)} s</span>` : html`on time`}${
      s.last_error ? html` <span class="error">${s.last_error}</span>` : ''
    }</td></tr>`,
  )}</tbody></table></div>`;
}

export function schedulesPage(ctx: PageContext, schedules: ReadonlyArray<ScheduleRow & { late: boolean }>): SafeHtml {
  return layout(ctx, 'Schedules', schedulesTable(schedules), '/api/version');
}
