import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP ranges (`10.96.0.0/12`, `fd00::/108`) for the CIDR entries of SLUICE_HTTP_ALLOW, and the
 * address arithmetic behind them. An address is handled as its groups: four 8-bit octets for
 * IPv4, eight 16-bit hextets for IPv6, so one masking loop serves both families.
 */

export interface IpRange {
  readonly family: 4 | 6;
  /** The network address's groups, every bit past the prefix zero. */
  readonly groups: readonly number[];
  readonly prefix: number;
}

interface IpGroups {
  readonly family: 4 | 6;
  readonly groups: readonly number[];
}

const BITS = { 4: 8, 6: 16 } as const;

/** `address/prefix` (IPv6 bare or in brackets) as a range, or a string saying why it is not one. */
export function parseIpRange(text: string): IpRange | string {
  const [rawAddress = '', rawPrefix = '', ...rest] = text.split('/');
  if (rest.length > 0) return 'it has more than one /';
  const address = rawAddress.replace(/^\[(.*)\]$/, '$1');
  // A zone id (fe80::1%eth0) names an interface, not addresses.
  const ip = address.includes('%') ? undefined : groupsOf(address);
  if (ip === undefined) return `${address || '(nothing)'} is not an IP address`;
  const max = ip.groups.length * BITS[ip.family];
  if (!/^\d{1,3}$/.test(rawPrefix) || Number(rawPrefix) > max) return `the prefix must be a whole number from 0 to ${max} for IPv${ip.family}`;
  const prefix = Number(rawPrefix);
  const groups = masked(ip, prefix);
  if (groups.some((g, i) => g !== ip.groups[i])) {
    return `${address} has bits set past /${prefix} (the range is ${formatGroups({ family: ip.family, groups })}/${prefix})`;
  }
  return { family: ip.family, groups, prefix };
}

/** Whether the range holds `address`; IPv4 written as IPv6 (mapped, NAT64) counts as that IPv4 address. */
export function rangeContains(range: IpRange, address: string): boolean {
  const ip = groupsOf(address, { unwrapIPv4: true });
  if (ip === undefined || ip.family !== range.family) return false;
  return masked(ip, range.prefix).every((g, i) => g === range.groups[i]);
}

/** A /32 or /128: the range is one address, named as exactly as an IP literal entry. */
export function isSingleAddress(range: IpRange): boolean {
  return range.prefix === range.groups.length * BITS[range.family];
}

/** The IPv4 address inside an IPv4-mapped or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIPv4(address: string): string | undefined {
  const groups = hextets(address);
  if (groups === undefined) return undefined;
  const mapped = groups.slice(0, 6).every((g, i) => g === (i === 5 ? 0xffff : 0));
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0);
  if (!mapped && !nat64) return undefined;
  const hi = groups[6] ?? 0;
  const lo = groups[7] ?? 0;
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

function groupsOf(address: string, options: { unwrapIPv4?: boolean } = {}): IpGroups | undefined {
  const bare = address.split('%')[0] ?? '';
  const v4 = isIPv4(bare) ? bare : options.unwrapIPv4 === true ? embeddedIPv4(bare) : undefined;
  if (v4 !== undefined) return { family: 4, groups: v4.split('.').map(Number) };
  const groups = hextets(bare);
  return groups === undefined ? undefined : { family: 6, groups };
}

/** The groups with every bit past `prefix` cleared. */
function masked(ip: IpGroups, prefix: number): number[] {
  const bits = BITS[ip.family];
  return ip.groups.map((g, i) => {
    const kept = Math.min(Math.max(prefix - i * bits, 0), bits);
    return g & (((1 << kept) - 1) << (bits - kept));
  });
}

/** Groups back to text; IPv6 in its shortest form (URL does the `::` compression). */
function formatGroups(ip: IpGroups): string {
  if (ip.family === 4) return ip.groups.join('.');
  return new URL(`http://[${ip.groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1);
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted tail converted). */
function hextets(address: string): number[] | undefined {
  if (!isIPv6(address)) return undefined;
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const split = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const groups =
    tail === undefined ? split(head) : [...split(head), ...Array<string>(8 - split(head).length - split(tail).length).fill('0'), ...split(tail)];
  return groups.map((g) => parseInt(g, 16));
}
