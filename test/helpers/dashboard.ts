import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium package; `.ci/run` installs it. Never a downloaded browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumInstalled(): boolean {
  return existsSync(CHROMIUM);
}

/** Headless Chromium from the system package (no sandbox: CI runs as root in a container). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A TCP port free right now on 127.0.0.1 (the dashboard's 0 means "off", not "any"). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The dashboard's own time for a response, from `Server-Timing: app;dur=…` (ms). */
export function serverTimeMs(headers: Headers): number {
  const m = /app;dur=([\d.]+)/.exec(headers.get('server-timing') ?? '');
  if (!m) throw new Error('no Server-Timing header');
  return Number(m[1]);
}
