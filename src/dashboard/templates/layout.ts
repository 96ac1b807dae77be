import { html, type HtmlValue, type SafeHtml } from '../html.js';

/** What every page needs besides its body. */
export interface PageContext {
  /** Actions are on: pages show their buttons (forms that POST). */
  actions: boolean;
  /** Cross-site request token, echoed by every action form (double-submit cookie). */
  token: string;
  /** The path the page was served at (forms come back here). */
  path: string;
}

const NAV: Array<[string, string]> = [
  ['/', 'Overview'],
  ['/jobs', 'Jobs'],
  ['/schedules', 'Schedules'],
  ['/workers', 'Workers'],
];

/**
 * The page around a body. Reading works without JavaScript; the script only adds the
 * refresh (polling `poll`, with ETag) and its pause button.
 */
export function layout(ctx: PageContext, title: string, body: HtmlValue, poll: string | null, flash?: string): SafeHtml {
  const current = ctx.path === '/' ? '/' : `/${ctx.path.split('/')[1] ?? ''}`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · sluice</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/dashboard.js" defer></script>
</head>
<body${poll ? html` data-poll="${poll}"` : ''}>
<a class="skip" href="#main">Skip to content</a>
<header>
  <nav aria-label="Dashboard">
    <span class="brand">sluice</span>
    <ul>${NAV.map(([href, label]) => html`<li><a href="${href}"${href === current ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul>
  </nav>
  ${poll ? html`<div class="refresh"><button type="button" id="refresh-toggle" aria-pressed="false" hidden>Pause auto-refresh</button> <span id="refresh-state" role="status" aria-live="polite"></span></div>` : ''}
</header>
<main id="main">
${flash ? html`<p class="flash" role="status">${flash}</p>` : ''}
<h1>${title}</h1>
${body}
</main>
<footer><p>${ctx.actions ? 'Actions are on (SLUICE_DASHBOARD_ACTIONS=true).' : 'Read-only: set SLUICE_DASHBOARD_ACTIONS=true to cancel, retry, pause and approve from here.'}</p></footer>
</body>
</html>
`;
}

/** A form with one button that POSTs an action; nothing when actions are off. */
export function actionButton(ctx: PageContext, path: string, label: string, extra: Record<string, string> = {}): SafeHtml {
  if (!ctx.actions) return html``;
  return html`<form class="action" method="post" action="${path}">
<input type="hidden" name="token" value="${ctx.token}"><input type="hidden" name="return" value="${ctx.path}">
${Object.entries(extra).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button type="submit">${label}</button></form>`;
}

/** A status as a labelled badge (text, not only colour). */
export function statusBadge(status: string): SafeHtml {
  return html`<span class="status status-${status}">${status}</span>`;
}
