import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { type IpRange, parseIpRange, rangeContains } from './ip-range.js';

/**
 * Which addresses the `http` handler may connect to when a host NAME brought it there.
 *
 * A job's URL names a host from SLUICE_HTTP_ALLOW, but what that name resolves to is up to
 * DNS, which may change between two lookups (DNS rebinding). So the check runs inside the
 * connection's own `lookup`: the addresses it passes on are the only ones the socket can
 * connect to, and a refused one never gets a SYN.
 *
 * A refused class is let through only for addresses the operator wrote down: the CIDR
 * entries of SLUICE_HTTP_ALLOW, judged by the allow list (http-allow-list.ts) and passed in
 * as `admits`. An IP literal in the URL is never looked up (net.connect skips `lookup` for
 * IPs); the allow list alone decides it, so literals are not checked here.
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

/**
 * Parsed on first use, not at load: the first IPv6 parse compiles node:net's address
 * pattern (~12 ms measured), which a replica that never runs an `http` job should not pay
 * at start-up.
 */
let parsed: ReadonlyArray<readonly [AddressClass, readonly IpRange[]]> | undefined;
const parsedRanges = (): ReadonlyArray<readonly [AddressClass, readonly IpRange[]]> => (parsed ??= RANGES.map(([name, cidrs]) => [
  name,
  cidrs.map((cidr) => {
    const range = parseIpRange(cidr);
    if (typeof range === 'string') throw new Error(`${cidr}: ${range}`); // a typo in the table above
    return range;
  }),
]));

/**
 * The class of a refused address, or undefined for an address the handler may reach by name.
 * IPv4 written inside IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is judged as
 * the IPv4 address it reaches. Anything that is not an IP address is refused as unspecified.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const bare = address.split('%')[0] ?? ''; // a zone id (fe80::1%eth0) is not part of the address
  if (isIP(bare) === 0) return 'unspecified';
  for (const [name, ranges] of parsedRanges()) if (ranges.some((range) => rangeContains(range, bare))) return name;
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

/** dns.lookup with `all: true`; a test passes a fake one to see what a resolver's answer leads to. */
export type ResolveAll = (
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const resolveAll: ResolveAll = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, callback);
};

/**
 * A `lookup` for net/tls.connect: resolves, then refuses the whole name when any of its
 * addresses is in a refused class and not one that `admits` lets through. Refusing rather
 * than dropping those addresses keeps the outcome the same whichever address family or
 * order the resolver returns.
 */
export function guardedLookup(admits: (address: string) => boolean, resolve: ResolveAll = resolveAll): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, addresses) => {
      if (err) return callback(err, '', 0);
      for (const { address } of addresses) {
        const addressClass = classifyAddress(address);
        if (addressClass !== undefined && !admits(address)) return callback(new AddressRefusedError(hostname, address, addressClass), '', 0);
      }
      const first = addresses[0];
      if (options.all === true) return callback(null, addresses);
      if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      return callback(null, first.address, first.family);
    });
  };
}
