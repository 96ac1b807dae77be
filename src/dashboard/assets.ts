/**
 * The dashboard's only static files, served from the daemon itself (no CDN, no build
 * step). The script is progressive: every page reads the same without it.
 */

export const DASHBOARD_CSS = `
:root { --fg: #1b1f24; --bg: #fff; --muted: #57606a; --line: #d0d7de; --accent: #0a58ca;
  --done: #1a7f37; --failed: #cf222e; --cancelled: #8c959f; --running: #0969da; --waiting: #8250df; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px; }
header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: 8px; padding: 8px 16px; border-bottom: 1px solid var(--line); background: #f6f8fa; }
nav ul { display: inline-flex; gap: 16px; list-style: none; margin: 0 0 0 16px; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; color: var(--fg); }
.brand { font-weight: 800; letter-spacing: .04em; }
main { padding: 8px 16px 24px; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: 12px 0; } h2 { font-size: 1.15rem; margin: 20px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
caption { text-align: left; color: var(--muted); font-size: .85rem; padding-bottom: 4px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
.sub, .meta, .note, footer { color: var(--muted); font-size: .85rem; }
footer { padding: 8px 16px; border-top: 1px solid var(--line); }
.status { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: .8rem; border: 1px solid currentColor; }
.status-done { color: var(--done); } .status-failed { color: var(--failed); } .status-cancelled { color: var(--cancelled); }
.status-running, .status-queued { color: var(--running); } .status-waiting { color: var(--waiting); } .status-pending { color: var(--muted); }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; background: #eaeef2; font-size: .8rem; }
.badge-bad { background: #ffebe9; color: var(--failed); }
.error { color: var(--failed); white-space: pre-wrap; word-break: break-word; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: 8px; overflow: auto; max-height: 420px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 24px; }
.facts th { width: 40%; font-weight: 500; color: var(--muted); }
form.action { display: inline; } .actions form { margin-right: 6px; }
button { font: inherit; padding: 2px 10px; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa; cursor: pointer; }
button:hover { background: #eaeef2; }
.filters, .bulk { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin: 8px 0; }
.pager { display: flex; gap: 16px; margin: 8px 0; }
.flash { background: #dafbe1; border: 1px solid var(--done); padding: 6px 10px; border-radius: 6px; }
.chart svg { width: 100%; height: 160px; } .chart .axis { stroke: var(--line); } .chart .tick { font-size: 10px; fill: var(--muted); }
.key::before { content: ""; display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 8px; }
.key-done::before { background: var(--done); } .key-failed::before { background: var(--failed); } .key-cancelled::before { background: var(--cancelled); }
.tree, .tree ul { list-style: none; padding-left: 20px; border-left: 1px dotted var(--line); }
.tree .focus { font-weight: 700; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
`;

/**
 * Auto-refresh: polls the page's small version endpoint (data-poll) with If-None-Match;
 * on a new version it fetches the page again and swaps <main>. Paused by the button
 * (remembered in localStorage), and while the tab is hidden or a form field has focus.
 */
export const DASHBOARD_JS = `
(function () {
  'use strict';
  var poll = document.body.getAttribute('data-poll');
  var button = document.getElementById('refresh-toggle');
  var state = document.getElementById('refresh-state');
  if (!poll || !button || !state) return;
  var INTERVAL = 5000;
  var etag = null;
  var paused = localStorage.getItem('sluice.refresh.paused') === '1';
  function show() {
    button.hidden = false;
    button.setAttribute('aria-pressed', paused ? 'true' : 'false');
    button.textContent = paused ? 'Resume auto-refresh' : 'Pause auto-refresh';
    state.textContent = paused ? 'Auto-refresh paused.' : 'Auto-refresh every 5 s.';
  }
  button.addEventListener('click', function () {
    paused = !paused;
    localStorage.setItem('sluice.refresh.paused', paused ? '1' : '0');
    show();
  });
  function busy() {
    var a = document.activeElement;
    return document.hidden || (a && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName));
  }
  function reload() {
    return fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) return;
      return r.text().then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var next = doc.getElementById('main');
        var main = document.getElementById('main');
        if (next && main) main.innerHTML = next.innerHTML;
      });
    });
  }
  function tick() {
    if (paused || busy()) return schedule();
    var headers = { accept: 'application/json' };
    if (etag) headers['if-none-match'] = etag;
    fetch(poll, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 304 || !r.ok) return;
      var first = etag === null;
      etag = r.headers.get('etag');
      if (!first) return reload();
    }).catch(function () { state.textContent = 'Refresh failed; retrying.'; }).then(schedule, schedule);
  }
  function schedule() { setTimeout(tick, INTERVAL); }
  show();
  tick();
})();
`;
