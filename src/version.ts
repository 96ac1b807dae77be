import { readFileSync } from 'node:fs';

/**
 * package.json's version, read once (the image and a checkout both ship package.json):
 * one level up from src/ and tsc's dist/, two from the bundle's dist/bundle/.
 */
export const VERSION: string = (() => {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'sluice') return pkg.version;
    } catch {
      // not there: the next candidate
    }
  }
  return '0.0.0';
})();
