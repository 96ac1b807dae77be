// The folder tree is the architecture (STYLE.md): db sits at the bottom. A module of
// src/db may use the leaf modules beside src/ (errors, limits, backoff) but nothing that
// observes, runs or schedules work; those reach db through hooks such as onStatement.
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

/** The relative module specifiers a file imports, resolved to paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)].map((m) =>
    relative(SRC, join(file, '..', m[1] ?? '')),
  );
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
});
