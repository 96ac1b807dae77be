// Every relative link in README.md and docs/*.md points to a file that exists and, with a
// #fragment into a Markdown file, to a heading that file has (GitHub's anchor rules).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

/** The text outside fenced code blocks and inline code spans, line by line. */
function proseLines(markdown: string): string[] {
  let fence = false;
  return markdown.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fence = !fence;
      return '';
    }
    return fence ? '' : line.replace(/`[^`]*`/g, (code) => (/^#{1,6} /.test(line) ? code : ''));
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
export function anchorOf(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(readFileSync(file, 'utf8'))) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

interface Link {
  page: string;
  line: number;
  target: string;
}

function linksOf(page: string): Link[] {
  const out: Link[] = [];
  proseLines(readFileSync(join(ROOT, page), 'utf8')).forEach((text, i) => {
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ page, line: i + 1, target: m[1]! });
  });
  return out;
}

/** Why a relative link is broken, or undefined when it resolves. */
function brokenBecause(link: Link): string | undefined {
  const [path = '', fragment] = link.target.split('#', 2);
  const file = path === '' ? join(ROOT, link.page) : join(ROOT, dirname(link.page), decodeURIComponent(path));
  if (!existsSync(file)) return `no file ${relative(ROOT, file)}`;
  if (fragment === undefined || !file.endsWith('.md')) return undefined;
  if (!anchorsOf(file).has(decodeURIComponent(fragment))) return `no heading #${fragment} in ${relative(ROOT, file)}`;
  return undefined;
}

describe('documentation links', () => {
  it('anchors follow GitHub: punctuation dropped, spaces become hyphens', () => {
    assert.equal(anchorOf('Addresses: loopback, private, link-local, metadata'), 'addresses-loopback-private-link-local-metadata');
    assert.equal(anchorOf('Why `@kubernetes/client-node` is pinned to 1.4.0'), 'why-kubernetesclient-node-is-pinned-to-140');
    assert.equal(anchorOf('3. Your overlay: database secret, image, settings'), '3-your-overlay-database-secret-image-settings');
  });

  it('README.md and every docs page link only to files and headings that exist', () => {
    const links = PAGES.flatMap(linksOf).filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l.target));
    assert.ok(links.length > 50, `found only ${links.length} relative links: is the parser broken?`);
    const broken = links.flatMap((l) => {
      const why = brokenBecause(l);
      return why ? [`${l.page}:${l.line}: (${l.target}) ${why}`] : [];
    });
    assert.deepEqual(broken, []);
  });

  it('the README links every docs page', () => {
    const linked = new Set(linksOf('README.md').map((l) => l.target.split('#')[0]));
    const missing = PAGES.filter((p) => p.startsWith('docs') && !linked.has(p));
    assert.deepEqual(missing, []);
  });
});
