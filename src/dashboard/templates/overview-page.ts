import { ACTIVE_STATUSES, FINAL_STATUSES } from '../../db/queries/job-statuses.js';
import { fmtInt, html, query, type SafeHtml } from '../html.js';
import type { Overview } from '../read-model.js';
import { throughputChart } from './chart.js';
import { actionButton, layout, type PageContext } from './layout.js';
import { schedulesTable } from './schedules-page.js';
import { workersTable } from './workers-page.js';

/** `/`: queues × statuses, the last hour's throughput, replicas, leader, schedules. */
export function overviewPage(ctx: PageContext, o: Overview, flash?: string): SafeHtml {
  const body = html`
<p class="meta">Counts of active jobs computed by the leader <strong>${o.leader ?? '(none yet)'}</strong> at ${o.computedAt ?? 'never'} (server time ${o.serverNow}).
Finished jobs are not counted: the last hour's columns add up the throughput minutes.</p>
<section aria-labelledby="queues-h">
<h2 id="queues-h">Queues</h2>
${
  o.queues.length === 0
    ? html`<p>No queues yet: <code>INSERT INTO jobs (type, payload) VALUES ('sleep', '{"ms": 100}')</code>.</p>`
    : html`<div class="scroll"><table>
<caption>Jobs per queue and status</caption>
<thead><tr><th scope="col">Queue</th>${ACTIVE_STATUSES.map((s) => html`<th scope="col" class="num">${s}</th>`)}${FINAL_STATUSES.map(
        (s) => html`<th scope="col" class="num">${s} <span class="sub">last hour</span></th>`,
      )}<th scope="col">Controls</th></tr></thead>
<tbody>${o.queues.map(
        (q) => html`<tr>
<th scope="row"><a href="/jobs${query({ queue: q.name })}">${q.name}</a>${q.paused ? html` <span class="badge">paused</span>` : ''}</th>
${ACTIVE_STATUSES.map((s) => html`<td class="num"><a href="/jobs${query({ queue: q.name, status: s })}">${q.counts[s]?.label ?? '0'}</a></td>`)}
${FINAL_STATUSES.map((s) => html`<td class="num"><a href="/jobs${query({ queue: q.name, status: s })}">${fmtInt(q.lastHour[s] ?? 0)}</a></td>`)}
<td>${q.ratePerSec !== null ? html`<span class="sub">${q.ratePerSec}/s</span> ` : ''}${q.concurrency !== null ? html`<span class="sub">max ${q.concurrency}</span> ` : ''}${actionButton(
          ctx,
          `/api/queues/${encodeURIComponent(q.name)}/${q.paused ? 'resume' : 'pause'}`,
          q.paused ? `Resume ${q.name}` : `Pause ${q.name}`,
        )}</td>
</tr>`,
      )}</tbody></table></div>`
}
</section>
<section aria-labelledby="tp-h">
<h2 id="tp-h">Throughput, last hour</h2>
${throughputChart(o.throughput)}
<details><summary>Throughput as a table</summary><div class="scroll"><table><caption>Finished per minute</caption>
<thead><tr><th scope="col">Minute</th><th scope="col" class="num">done</th><th scope="col" class="num">failed</th><th scope="col" class="num">cancelled</th></tr></thead>
<tbody>${o.throughput
    .filter((m) => m.done + m.failed + m.cancelled > 0)
    .map((m) => html`<tr><td>${m.minute.slice(0, 16)}</td><td class="num">${m.done}</td><td class="num">${m.failed}</td><td class="num">${m.cancelled}</td></tr>`)}</tbody></table></div></details>
</section>
<section aria-labelledby="workers-h">
<h2 id="workers-h">Replicas</h2>
${workersTable(o.workers, o.leader)}
</section>
<section aria-labelledby="schedules-h">
<h2 id="schedules-h">Schedules</h2>
${schedulesTable(o.schedules)}
</section>`;
  return layout(ctx, 'Overview', body, '/api/version', flash);
}
