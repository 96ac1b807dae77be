// Which addresses the `http` handler refuses to reach by name, the `lookup` that enforces it,
// and the CIDR entries of SLUICE_HTTP_ALLOW that let an allowed name reach a private range.
// Run: node --import tsx --test test/unit/http-address-guard.test.ts
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { AddressRefusedError, classifyAddress, guardedLookup, type ResolveAll } from '../../src/handlers/http-address-guard.js';
import { parseAllowList } from '../../src/handlers/http-allow-list.js';

describe('classifyAddress', () => {
  const cases: Array<[string, ReturnType<typeof classifyAddress>]> = [
    // loopback
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
    // unspecified ("this network")
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:0.0.0.0', 'unspecified'],
    // link-local
    ['169.254.0.1', 'link-local'],
    ['169.254.20.10', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    // private
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['::ffff:10.1.2.3', 'private'],
    ['64:ff9b::192.168.0.1', 'private'],
    // cloud metadata, before the link-local and private ranges that hold them
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['::ffff:a9fe:a9fe', 'cloud metadata'],
    ['64:ff9b::a9fe:a9fe', 'cloud metadata'],
    // public: allowed
    ['8.8.8.8', undefined],
    ['1.1.1.1', undefined],
    ['172.15.255.255', undefined],
    ['172.32.0.1', undefined],
    ['100.63.255.255', undefined],
    ['100.128.0.1', undefined],
    ['169.253.255.255', undefined],
    ['192.169.0.1', undefined],
    ['11.0.0.1', undefined],
    ['2606:4700:4700::1111', undefined],
    ['fec0::1', undefined],
    ['::ffff:8.8.8.8', undefined],
    ['64:ff9b::8.8.8.8', undefined],
    // not an address at all: refused
    ['localhost', 'unspecified'],
    ['', 'unspecified'],
  ];
  for (const [address, expected] of cases) {
    it(`${address || '(empty)'} → ${expected ?? 'allowed'}`, () => {
      assert.equal(classifyAddress(address), expected);
    });
  }
});

describe('guardedLookup', () => {
  type Answer = { err: Error | null; address: string | LookupAddress[]; family?: number };
  /** One lookup through the guard; `answer` replaces the resolver (else the real dns.lookup). */
  function lookup(hostname: string, all: boolean, allow: readonly string[] = [], answer?: LookupAddress[]): Promise<Answer> {
    const resolve: ResolveAll | undefined = answer && ((_name, _options, callback) => callback(null, answer));
    return new Promise((done) => {
      guardedLookup(parseAllowList(allow).admits, resolve)(hostname, { all }, (err, address, family) => done({ err, address, family }));
    });
  }
  const refusal = (answer: Answer): AddressRefusedError => {
    assert.ok(answer.err instanceof AddressRefusedError, `got ${String(answer.err)}`);
    return answer.err;
  };

  for (const all of [true, false]) {
    it(`refuses a name that resolves to loopback (all: ${all}), naming name, address and class`, async () => {
      const err = refusal(await lookup('localhost', all));
      assert.equal(err.hostname, 'localhost');
      assert.equal(err.addressClass, 'loopback');
      assert.match(err.message, /^localhost resolves to (127\.0\.0\.1|::1), a loopback address$/);
    });
  }

  it('passes a public address on in the shape the caller asked for', async () => {
    // dns.lookup answers an IP without asking any server, so this runs offline.
    assert.deepEqual(await lookup('8.8.8.8', true), { err: null, address: [{ address: '8.8.8.8', family: 4 }], family: undefined });
    assert.deepEqual(await lookup('8.8.8.8', false), { err: null, address: '8.8.8.8', family: 4 });
  });

  it('passes a resolver error on unchanged', async () => {
    const { err } = await lookup('no-such-host.invalid', false);
    assert.ok(err && !(err instanceof AddressRefusedError));
    assert.match((err as NodeJS.ErrnoException).code ?? '', /ENOTFOUND|EAI_AGAIN/);
  });

  describe('an allowed name resolving to a private address (a ClusterIP)', () => {
    const clusterIp = [{ address: '10.1.2.3', family: 4 }];

    it('is refused without a CIDR entry that holds it', async () => {
      for (const allow of [['svc'], ['svc', '10.1.2.4/32'], ['svc', '192.168.0.0/16'], ['svc', 'fc00::/7'], ['svc', '10.1.2.3']]) {
        const err = refusal(await lookup('svc', false, allow, clusterIp));
        assert.equal(err.message, 'svc resolves to 10.1.2.3, a private address', allow.join(','));
      }
    });

    it('is accepted with 10.0.0.0/8, in the shape the caller asked for', async () => {
      assert.deepEqual(await lookup('svc', false, ['svc', '10.0.0.0/8'], clusterIp), { err: null, address: '10.1.2.3', family: 4 });
      assert.deepEqual(await lookup('svc', true, ['svc', '10.0.0.0/8'], clusterIp), { err: null, address: clusterIp, family: undefined });
      assert.equal((await lookup('svc', false, ['svc', '10.1.2.3/32'], clusterIp)).err, null);
      assert.equal((await lookup('svc', false, ['svc', '0.0.0.0/0'], clusterIp)).err, null);
    });

    it('is judged as IPv4 when the resolver writes it as IPv6 (::ffff:10.1.2.3)', async () => {
      const mapped = [{ address: '::ffff:10.1.2.3', family: 6 }];
      assert.equal((await lookup('svc', false, ['svc', '10.0.0.0/8'], mapped)).err, null);
      assert.equal(refusal(await lookup('svc', false, ['svc', '::/0'], mapped)).addressClass, 'private');
    });

    it('is refused when any one of its addresses is outside every range', async () => {
      const both = [clusterIp[0]!, { address: 'fd00::3', family: 6 }];
      assert.equal(refusal(await lookup('svc', true, ['svc', '10.0.0.0/8'], both)).address, 'fd00::3');
      assert.equal((await lookup('svc', true, ['svc', '10.0.0.0/8', 'fd00::/8'], both)).err, null);
    });
  });

  describe('metadata, loopback and unspecified: only through an entry of that one address', () => {
    const cases: Array<[string, number, string[]]> = [
      ['169.254.169.254', 4, ['169.254.0.0/16', '0.0.0.0/0', '169.254.169.0/24', '169.254.169.254']],
      ['fd00:ec2::254', 6, ['fd00::/8', '::/0', 'fc00::/7']],
      ['::ffff:169.254.169.254', 6, ['169.254.0.0/16', '0.0.0.0/0']],
      ['127.0.0.1', 4, ['127.0.0.0/8', '0.0.0.0/0']],
      ['::1', 6, ['::/0', '::/127']],
      ['0.0.0.0', 4, ['0.0.0.0/8', '0.0.0.0/0']],
    ];
    for (const [address, family, broad] of cases) {
      it(`${address}: refused with ${broad.join(', ')}; accepted with its /${family === 4 ? 32 : 128}`, async () => {
        const answer = [{ address, family }];
        for (const entry of broad) assert.ok(refusal(await lookup('svc', false, ['svc', entry], answer)), entry);
        const v4 = /(\d+\.){3}\d+$/.exec(address)?.[0];
        const exact = v4 === undefined ? `${address}/128` : `${v4}/32`;
        assert.equal((await lookup('svc', false, ['svc', exact], answer)).err, null, exact);
      });
    }

    it('a link-local neighbour of the metadata address opens with 169.254.0.0/16', async () => {
      assert.equal((await lookup('svc', false, ['svc', '169.254.0.0/16'], [{ address: '169.254.20.10', family: 4 }])).err, null);
    });
  });
});

describe('SLUICE_HTTP_ALLOW CIDR entries', () => {
  const allows = (allow: readonly string[], url: string): boolean => parseAllowList(allow).allows(new URL(url));

  it('allow an IP-literal URL inside the range, on any port, and nothing else', () => {
    assert.ok(allows(['10.96.0.0/12'], 'http://10.96.14.2:8080/hook'));
    assert.ok(allows(['10.96.0.0/12'], 'https://10.111.255.255/'));
    assert.ok(allows(['fd00:10:96::/108'], 'http://[fd00:10:96::a]:8080/'));
    assert.ok(allows(['10.96.0.0/12'], 'http://[::ffff:10.96.0.1]/'), 'IPv4 written as IPv6 is that IPv4 address');
    assert.ok(!allows(['10.96.0.0/12'], 'http://10.112.0.1/'));
    assert.ok(!allows(['10.96.0.0/12'], 'http://svc/'), 'a range does not allow names');
    assert.ok(!allows(['10.96.0.0/12'], 'http://10.96.0.1.nip.io/'));
  });

  it('never open loopback or metadata literals through a broad range; a single-address range does', () => {
    for (const url of ['http://169.254.169.254/', 'http://127.0.0.1:9090/', 'http://[fd00:ec2::254]/', 'http://0.0.0.0/']) {
      assert.ok(!allows(['0.0.0.0/0', '::/0', '169.254.0.0/16', '127.0.0.0/8', 'fd00::/8'], url), url);
    }
    assert.ok(allows(['169.254.169.254/32'], 'http://169.254.169.254/'));
    assert.ok(allows(['127.0.0.1/32'], 'http://127.0.0.1:9090/'));
    assert.ok(allows(['169.254.0.0/16'], 'http://169.254.20.10/'), 'other link-local addresses do open');
  });

  it('are read however they are written: case, brackets, spaces', () => {
    assert.ok(allows([' FD00::/8 '], 'http://[fd00::1]/'));
    assert.ok(allows(['[fd00::]/8'], 'http://[fd00::1]/'));
  });

  const bad: Array<[string, RegExp]> = [
    ['10.96.0.0/33', /prefix must be a whole number from 0 to 32 for IPv4/],
    ['fd00::/129', /from 0 to 128 for IPv6/],
    ['10.96.0.0/', /prefix must be a whole number/],
    ['10.96.0.0/+8', /prefix must be a whole number/],
    ['10.96.0/12', /10\.96\.0 is not an IP address/],
    ['svc/12', /svc is not an IP address/],
    ['/8', /\(nothing\) is not an IP address/],
    ['fe80::%eth0/64', /is not an IP address/],
    ['10.0.0.0/8:80', /prefix must be a whole number/],
    ['10.0.0.0/8/9', /more than one \//],
    ['10.96.14.2/12', /10\.96\.14\.2 has bits set past \/12 \(the range is 10\.96\.0\.0\/12\)/],
    ['fd00::/7', /has bits set past \/7 \(the range is fc00::\/7\)/],
  ];
  for (const [entry, why] of bad) {
    it(`refuse "${entry}", naming SLUICE_HTTP_ALLOW, the entry and why`, () => {
      assert.throws(
        () => parseAllowList(['svc', entry]),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.problems.length, 1);
          assert.ok(err.problems[0]!.startsWith(`SLUICE_HTTP_ALLOW has "${entry}", a bad CIDR range`), err.problems[0]);
          assert.match(err.problems[0]!, why);
          return true;
        },
      );
    });
  }
});
