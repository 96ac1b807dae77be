import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { type AddressClass, classifyAddress } from './http-address-guard.js';
import { type IpRange, isSingleAddress, parseIpRange, rangeContains } from './ip-range.js';

/**
 * SLUICE_HTTP_ALLOW for the `http` handler: which hosts a job may call, and which internal
 * addresses an allowed host name may resolve to. The one parser of the variable: config.ts
 * validates with it at start-up, the handler builds its list with it.
 *
 *   `host`           → that host, any port
 *   `host:port`      → that host, that port only
 *   `10.96.0.0/12`   → addresses: an allowed name may resolve into the range (else a private
 *                      or link-local address is refused at connect time), and a URL naming
 *                      an address of the range by IP literal is allowed, any port
 */
export interface AllowList {
  /** Whether a job may call this URL (its host and port; an IP literal also through a range). */
  readonly allows: (url: URL) => boolean;
  /** Whether a range entry lets a connection go to `address`, which a name resolved to. */
  readonly admits: (address: string) => boolean;
}

/**
 * Reached through a range only when the range is that one address (`/32`, `/128`): a broad
 * entry (`0.0.0.0/0`, `169.254.0.0/16`, `127.0.0.0/8`) written to open a service network
 * must not open the node's cloud credentials or a port on the pod itself by accident.
 * Unspecified is here too: Linux connects 0.0.0.0 to the host itself, as loopback.
 */
const ONLY_BY_EXACT_ENTRY: ReadonlySet<AddressClass> = new Set(['cloud metadata', 'loopback', 'unspecified']);

/** Parses the entries; throws one ConfigError naming every bad one. */
export function parseAllowList(entries: readonly string[]): AllowList {
  const anyPort = new Set<string>();
  const withPort = new Set<string>();
  const ranges: IpRange[] = [];
  const bad: string[] = [];
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (entry.includes('/')) {
      const range = parseIpRange(entry);
      if (typeof range === 'string') bad.push(`SLUICE_HTTP_ALLOW has "${raw}", a bad CIDR range (address/prefix, e.g. 10.96.0.0/12): ${range}`);
      else ranges.push(range);
      continue;
    }
    const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry);
    if (m?.[1] === undefined) bad.push(`SLUICE_HTTP_ALLOW has "${raw}", which is not a host, host:port or CIDR range`);
    else if (m[2] === undefined) anyPort.add(canonicalHost(m[1]));
    else withPort.add(`${canonicalHost(m[1])}:${Number(m[2])}`);
  }
  if (bad.length > 0) throw new ConfigError(bad);

  const admits = (address: string): boolean => {
    const addressClass = classifyAddress(address);
    const broadOk = addressClass === undefined || !ONLY_BY_EXACT_ENTRY.has(addressClass);
    return ranges.some((range) => rangeContains(range, address) && (broadOk || isSingleAddress(range)));
  };
  return {
    allows: (url) => {
      if (anyPort.has(url.hostname) || withPort.has(hostPort(url))) return true;
      const ip = url.hostname.replace(/^\[(.*)\]$/, '$1');
      return isIP(ip) !== 0 && admits(ip);
    },
    admits,
  };
}

/** `host:port` with the scheme's default port filled in. */
export function hostPort(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}

/**
 * The host as URL.hostname spells it, so that an entry matches however it was written:
 * `[::ffff:127.0.0.1]` → `[::ffff:7f00:1]`, `127.1` → `127.0.0.1`. One no URL accepts is kept
 * as written: it matches no URL.
 */
function canonicalHost(host: string): string {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return host;
  }
}
