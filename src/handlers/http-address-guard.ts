import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIPv4, isIPv6, type LookupFunction } from 'node:net';

/**
 * Which addresses the `http` handler may connect to when a host NAME brought it there.
 *
 * A job's URL names a host from SLUICE_HTTP_ALLOW, but what that name resolves to is up to
 * DNS, which may change between two lookups (DNS rebinding). So the check runs inside the
 * connection's own `lookup`: the addresses it passes on are the only ones the socket can
 * connect to, and a refused one never gets a SYN.
 *
 * An IP literal in the URL is never looked up (net.connect skips `lookup` for IPs), and it
 * can only pass the allow list through an entry naming that very address: an operator who
 * writes `SLUICE_HTTP_ALLOW=127.0.0.1:8080` means it, so literals are not checked here.
 */

/** Why an address is refused; undefined from classifyAddress means "public: allowed". */
export type AddressClass = 'cloud metadata' | 'loopback' | 'unspecified' | 'link-local' | 'private';

/** Most specific first: the metadata addresses sit inside link-local and private ranges. */
const RANGES: ReadonlyArray<readonly [AddressClass, readonly string[]]> = [
  ['cloud metadata', ['169.254.169.254/32', 'fd00:ec2::254/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  // 0.0.0.0/8 is "this network": Linux connects 0.0.0.0 to the host itself.
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  // RFC 1918, carrier-grade NAT (RFC 6598; some clusters put pods there) and IPv6 ULA.
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']],
];

const LISTS: ReadonlyArray<readonly [AddressClass, BlockList]> = RANGES.map(([name, cidrs]) => {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net = '', prefix = ''] = cidr.split('/');
    list.addSubnet(net, Number(prefix), isIPv6(net) ? 'ipv6' : 'ipv4');
  }
  return [name, list] as const;
});

/**
 * The class of a refused address, or undefined for an address the handler may reach by name.
 * IPv4 written inside IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is judged as
 * the IPv4 address it reaches. Anything that is not an IP address is refused as unspecified.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const bare = address.split('%')[0] ?? ''; // a zone id (fe80::1%eth0) is not part of the address
  if (isIPv4(bare)) return rangeOf(bare, 'ipv4');
  if (!isIPv6(bare)) return 'unspecified';
  const v4 = embeddedIPv4(bare);
  return v4 === undefined ? rangeOf(bare, 'ipv6') : rangeOf(v4, 'ipv4');
}

function rangeOf(ip: string, type: 'ipv4' | 'ipv6'): AddressClass | undefined {
  for (const [name, list] of LISTS) if (list.check(ip, type)) return name;
  return undefined;
}

/** A refused connection: carried as the `cause` of the failed fetch, turned into a job error. */
export class AddressRefusedError extends Error {
  override name = 'AddressRefusedError';
  constructor(
    readonly hostname: string,
    readonly address: string,
    readonly addressClass: AddressClass,
  ) {
    super(`${hostname} resolves to ${address}, a ${addressClass} address`);
  }
}

/**
 * A `lookup` for net/tls.connect: dns.lookup, then refuses the whole name when any of its
 * addresses is in a refused class. Refusing rather than dropping those addresses keeps the
 * outcome the same whichever address family or order the resolver returns.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '', 0);
    for (const { address } of addresses) {
      const addressClass = classifyAddress(address);
      if (addressClass !== undefined) return callback(new AddressRefusedError(hostname, address, addressClass), '', 0);
    }
    const first = addresses[0];
    if (options.all === true) return callback(null, addresses);
    if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
    return callback(null, first.address, first.family);
  });
};

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
