// Which addresses the `http` handler refuses to reach by name, and the `lookup` that enforces it.
// Run: node --import tsx --test test/unit/http-address-guard.test.ts
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { describe, it } from 'node:test';
import { AddressRefusedError, classifyAddress, guardedLookup } from '../../src/handlers/http-address-guard.js';

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
  function lookup(hostname: string, all: boolean): Promise<{ err: Error | null; address: string | LookupAddress[]; family?: number }> {
    return new Promise((resolve) => {
      guardedLookup(hostname, { all }, (err, address, family) => resolve({ err, address, family }));
    });
  }

  for (const all of [true, false]) {
    it(`refuses a name that resolves to loopback (all: ${all}), naming name, address and class`, async () => {
      const { err } = await lookup('localhost', all);
      assert.ok(err instanceof AddressRefusedError, `got ${String(err)}`);
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
});
