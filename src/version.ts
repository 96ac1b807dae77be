import { readFileSync } from 'node:fs';

/** package.json's version, read once (the image and a checkout both ship package.json). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
