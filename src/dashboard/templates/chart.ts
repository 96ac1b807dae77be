import { html, type SafeHtml } from '../html.js';
import type { ThroughputMinute } from '../read-model.js';

const W = 720;
const H = 160;
const PAD = 28;
const SERIES: Array<['done' | 'failed' | 'cancelled', string]> = [
  ['done', 'var(--done)'],
  ['failed', 'var(--failed)'],
  ['cancelled', 'var(--cancelled)'],
];

/**
 * Jobs finished per minute over the last hour, as inline SVG stacked bars: no script, no
 * library, readable by a screen reader through its title, description and the table
 * beside it (details element) that carries the same numbers.
 */
export function throughputChart(minutes: readonly ThroughputMinute[]): SafeHtml {
  const max = Math.max(1, ...minutes.map((m) => m.done + m.failed + m.cancelled));
  const barW = (W - PAD) / Math.max(1, minutes.length);
  const y = (n: number): number => ((H - PAD) * n) / max;
  const total = minutes.reduce((s, m) => s + m.done + m.failed + m.cancelled, 0);
  const bars = minutes.map((m, i) => {
    let top = H - PAD;
    return SERIES.map(([key, colour]) => {
      const h = y(m[key]);
      if (h <= 0) return html``;
      top -= h;
      return html`<rect x="${(PAD + i * barW + 1).toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}"><title>${m.minute.slice(11, 16)} ${key}: ${m[key]}</title></rect>`;
    });
  });
  const first = minutes[0]?.minute.slice(11, 16) ?? '';
  const last = minutes[minutes.length - 1]?.minute.slice(11, 16) ?? '';
  return html`<figure class="chart">
<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="none">
<title id="chart-title">Jobs finished per minute, last hour</title>
<desc id="chart-desc">${total} jobs finished from ${first} to ${last}; at most ${max} in one minute.</desc>
<line x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}" class="axis"/>
<text x="2" y="12" class="tick">${max}</text><text x="2" y="${H - PAD}" class="tick">0</text>
<text x="${PAD}" y="${H - 8}" class="tick">${first}</text><text x="${W - 40}" y="${H - 8}" class="tick">${last}</text>
${bars}
</svg>
<figcaption>Finished per minute: <span class="key key-done">done</span> <span class="key key-failed">failed</span> <span class="key key-cancelled">cancelled</span></figcaption>
</figure>`;
}
