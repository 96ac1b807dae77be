import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { HandlerRegistry } from '../../src/handlers/registry.js';

describe('HandlerRegistry.load (SLUICE_HANDLERS modules)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-handlers-'));
    writeFileSync(join(dir, 'good.mjs'), 'export default { greet: async (job) => `hi ${job.id}`, sleep: async () => "mine" };\n');
    writeFileSync(join(dir, 'not-a-map.mjs'), 'export default 42;\n');
    writeFileSync(join(dir, 'not-a-function.mjs'), 'export default { greet: "hello" };\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Asserts `load(path)` is refused with a ConfigError whose message matches. */
  async function refused(path: string, message: RegExp): Promise<void> {
    await assert.rejects(new HandlerRegistry().load(path, dir), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
      assert.match(err.message, message);
      return true;
    });
  }

  it('loads the types of a module, relative to cwd, overriding a built-in on purpose', async () => {
    const builtIn = (): Promise<string> => Promise.resolve('built in');
    const registry = new HandlerRegistry({ sleep: builtIn });
    assert.deepEqual(await registry.load('./good.mjs', dir), ['greet', 'sleep']);
    assert.deepEqual(registry.types(), ['greet', 'sleep']);
    assert.notEqual(registry.get('sleep'), builtIn);
  });

  it('a module that cannot be imported is a ConfigError naming it', () =>
    refused('./missing.mjs', /^SLUICE_HANDLERS: cannot load "\.\/missing\.mjs": /));

  it('a default export that is not an object is a ConfigError', () =>
    refused('./not-a-map.mjs', /^SLUICE_HANDLERS: "\.\/not-a-map\.mjs" must default-export an object/));

  it('a type mapped to something other than a function is a ConfigError naming the type', () =>
    refused('./not-a-function.mjs', /^SLUICE_HANDLERS: "\.\/not-a-function\.mjs" exports "greet", which is not a function/));
});
