import type { WorkerRow } from '../../db/queries/dashboard-overview.js';
import { html, type SafeHtml } from '../html.js';
import { layout, type PageContext } from './layout.js';

/** Replicas with their heartbeat age; the leader marked. */
export function workersTable(workers: readonly WorkerRow[], leader: string | null): SafeHtml {
  if (workers.length === 0) return html`<p>No replica is registered.</p>`;
  return html`<div class="scroll"><table><caption>Live replicas (job_workers)</caption>
<thead><tr><th scope="col">Worker</th><th scope="col">Host</th><th scope="col" class="num">PID</th><th scope="col">Version</th><th scope="col">Queues</th><th scope="col">Started</th><th scope="col" class="num">Heartbeat age</th></tr></thead>
<tbody>${workers.map(
    (w) => html`<tr><th scope="row">${w.id}${w.id === leader ? html` <span class="badge">leader</span>` : ''}</th><td>${w.host}</td><td class="num">${w.pid}</td><td>${w.version}</td><td>${w.queues}</td><td>${w.started_at}</td><td class="num">${(w.age_ms / 1000).toFixed(1)} s</td></tr>`,
  )}</tbody></table></div>`;
}

export function workersPage(ctx: PageContext, workers: readonly WorkerRow[], leader: string | null): SafeHtml {
  return layout(ctx, 'Workers', workersTable(workers, leader), '/api/version');
}
