import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, coerceError } from '../errors.js';
import type { Handler, HandlerMap } from './types.js';

/** Maps job types to handlers: built-ins first, then each module of SLUICE_HANDLERS. */
export class HandlerRegistry {
  private readonly handlers = new Map<string, Handler>();
  /** Types whose handler came from a module of SLUICE_HANDLERS (not built in). */
  private readonly fromModules = new Set<string>();

  constructor(builtIns: HandlerMap = {}) {
    for (const [type, handler] of Object.entries(builtIns)) this.handlers.set(type, handler);
  }

  get(type: string): Handler | undefined {
    return this.handlers.get(type);
  }

  /** True for a handler loaded from a module: code sluice does not know. */
  isFromModule(type: string): boolean {
    return this.fromModules.has(type);
  }

  types(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /**
   * Imports a module whose default export maps type → handler. A later module may
   * override a built-in on purpose; a module that exports anything else is refused with
   * a ConfigError (the process exits as for a bad variable).
   */
  async load(modulePath: string, cwd = process.cwd()): Promise<string[]> {
    const target = modulePath.startsWith('.') || isAbsolute(modulePath) ? pathToFileURL(resolve(cwd, modulePath)).href : modulePath;
    let mod: { default?: unknown };
    try {
      mod = (await import(target)) as { default?: unknown };
    } catch (err) {
      throw new ConfigError([`SLUICE_HANDLERS: cannot load "${modulePath}": ${coerceError(err).message}`]);
    }
    const map = mod.default;
    if (typeof map !== 'object' || map === null) {
      throw new ConfigError([`SLUICE_HANDLERS: "${modulePath}" must default-export an object mapping job type to an async function`]);
    }
    const loaded: string[] = [];
    for (const [type, handler] of Object.entries(map)) {
      if (typeof handler !== 'function') {
        throw new ConfigError([`SLUICE_HANDLERS: "${modulePath}" exports "${type}", which is not a function`]);
      }
      this.handlers.set(type, handler as Handler);
      this.fromModules.add(type);
      loaded.push(type);
    }
    return loaded;
  }
}
