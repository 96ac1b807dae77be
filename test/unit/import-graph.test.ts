// The folder tree is the architecture (STYLE.md): db sits at the bottom. A module of
// src/db may use the leaf modules beside src/ (errors, limits, backoff) but nothing that
// observes, runs or schedules work; those reach db through hooks such as onStatement.
// And the Kubernetes client (~80 MB resident) stays out of a daemon that does not use it,
// as does anything that slows start-up for nothing.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
/** Folders of src/ that db must never import. */
const ABOVE_DB = ['observability', 'consumers', 'publishers', 'leader', 'handlers', 'schedules'];

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The module specifiers a file imports statically; `import type` only when `types` is set. */
function specifiersOf(file: string, types = true): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)[^'"]*from\s+'([^']+)'/gm)]
    .filter((m) => types || !/^(?:import|export) type\b/.test(m[0]))
    .map((m) => m[1] ?? '');
}

/** The relative modules a file imports, as paths under src/ (`.js` as written). */
function importsOf(file: string, types = true): string[] {
  return specifiersOf(file, types)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => relative(SRC, join(file, '..', spec)));
}

/** Every module of src/ that `entry` loads at start-up: static imports, type-only ones left out. */
function loadedAtStart(entry: string): string[] {
  const seen = new Set<string>([entry]);
  for (const file of seen) {
    for (const target of importsOf(join(SRC, file), false)) seen.add(target.replace(/\.js$/, '.ts'));
  }
  return [...seen];
}

describe('import graph', () => {
  it('src/db imports nothing from the layers above it', () => {
    const files = sourcesUnder(join(SRC, 'db'));
    assert.ok(files.length >= 4, `found ${files.length} db modules`);
    const upward = files.flatMap((file) =>
      importsOf(file)
        .filter((target) => ABOVE_DB.some((folder) => target.startsWith(`${folder}/`) || target === folder))
        .map((target) => `${relative(SRC, file)} → ${target}`),
    );
    assert.deepEqual(upward, []);
  });

  it('publishers import nothing from src/consumers: the channel side (room.ts) is the boundary', () => {
    const files = sourcesUnder(join(SRC, 'publishers'));
    const crossing = files.flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith('consumers/'))
        .map((target) => `${relative(SRC, file)} → ${target}`),
    );
    assert.deepEqual(crossing, []);
  });

  it('@kubernetes/client-node is not loaded at start-up: only createLeader imports it, on demand', () => {
    // main.ts turns the compile cache on, then loads cli.ts: what cli.ts loads statically is start-up.
    assert.match(readFileSync(join(SRC, 'main.ts'), 'utf8'), /await import\('\.\/cli\.js'\)/);
    assert.deepEqual(specifiersOf(join(SRC, 'main.ts')), ['node:module']);
    const modules = loadedAtStart('cli.ts');
    assert.ok(modules.includes('leader/create-leader.ts') && modules.includes('daemon.ts'), modules.join(', '));
    const eager = modules.filter((file) => specifiersOf(join(SRC, file), false).includes('@kubernetes/client-node'));
    assert.deepEqual(eager, []);
  });

  it('node:http is required, not imported: its ESM facade loads the undici bundled with Node 24 (~45 ms at start-up)', () => {
    const imported = sourcesUnder(SRC).filter((file) => specifiersOf(file, false).includes('node:http'));
    assert.deepEqual(imported.map((file) => relative(SRC, file)), []);
  });
});
