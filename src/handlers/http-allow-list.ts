import { ConfigError } from '../errors.js';

/** SLUICE_HTTP_ALLOW for the `http` handler: which hosts a job may call. */

/** `host` → any port; `host:port` → that port only. Matches URL.hostname (lower-cased, IDN as punycode). */
export function parseAllowList(entries: readonly string[]): (url: URL) => boolean {
  const anyPort = new Set<string>();
  const withPort = new Set<string>();
  const bad: string[] = [];
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry);
    if (m?.[1] === undefined) bad.push(`SLUICE_HTTP_ALLOW has "${raw}", which is not a host or host:port`);
    else if (m[2] === undefined) anyPort.add(canonicalHost(m[1]));
    else withPort.add(`${canonicalHost(m[1])}:${Number(m[2])}`);
  }
  if (bad.length > 0) throw new ConfigError(bad);
  return (url) => anyPort.has(url.hostname) || withPort.has(hostPort(url));
}

/** `host:port` with the scheme's default port filled in. */
export function hostPort(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}

/**
 * The host as URL.hostname spells it, so that an entry matches however it was written:
 * `[::ffff:127.0.0.1]` → `[::ffff:7f00:1]`, `127.1` → `127.0.0.1`. One no URL accepts is kept
 * as written (config.ts already checked its shape): it matches no URL, as before.
 */
function canonicalHost(host: string): string {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return host;
  }
}
