// The election of KubernetesLeaseLeader against an in-memory LeaseStore: client-go's rules
// with an injected clock, and the campaign loop's timing under node:test's mock timers
// (no wall-clock bounds). The HTTP adapter has its own test against a fake API server
// (test/integration/kubernetes-lease-leader.test.ts).
import assert from 'node:assert/strict';
import { setImmediate } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import { KubernetesLeaseLeader, type KubernetesLeaseLeaderOptions } from '../../src/leader/kubernetes-lease-leader.js';
import { changes, watchLeaders } from '../helpers/leaders.js';
import { MemoryLeaseStore } from '../helpers/memory-lease-store.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const running: KubernetesLeaseLeader[] = [];

function candidate(
  store: MemoryLeaseStore,
  identity: string,
  opts: Omit<KubernetesLeaseLeaderOptions, 'store' | 'identity'> = {},
): KubernetesLeaseLeader {
  const leader = new KubernetesLeaseLeader({ store: store.client(identity), identity, ...opts });
  running.push(leader);
  return leader;
}


/** Lets the promise chains started by a fired timer run to their next wait. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await setImmediate();
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((leader) => leader.stop()));
});

describe('KubernetesLeaseLeader: the election on an in-memory Lease', () => {
  it('creates the Lease when there is none, holding it from its own clock', async () => {
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { clock: () => T0 });
    const seen = changes(a);
    assert.deepEqual(await a.runOnce(), { action: 'created', leader: true });
    assert.equal(a.isLeader(), true);
    assert.deepEqual(seen, [true]);
    assert.deepEqual(store.record, {
      holderIdentity: 'pod-a',
      leaseDurationSeconds: 15,
      acquireTime: T0,
      renewTime: T0,
      leaseTransitions: 0,
    });
  });

  it('the holder renews from the record it wrote, without reading it again', async () => {
    const store = new MemoryLeaseStore();
    let now = T0;
    const a = candidate(store, 'pod-a', { clock: () => now });
    await a.runOnce();
    for (let i = 1; i <= 3; i++) {
      now = T0 + i * 2_000;
      assert.deepEqual(await a.runOnce(), { action: 'renewed', leader: true });
      assert.equal(store.record?.renewTime, now, 'renewTime advances');
    }
    assert.deepEqual(store.callsBy('pod-a').map((c) => c.op), ['get', 'create', 'replace', 'replace', 'replace']);
    assert.equal(store.record?.acquireTime, T0, 'acquireTime stays');
    assert.equal(store.record?.leaseTransitions, 0, 'same holder: no transition');
  });

  it("takes over a lease held by another only once unchanged for its duration by the observer's own clock", async () => {
    const store = new MemoryLeaseStore();
    // Renewed an hour ago by the holder's clock: that says nothing about our clock.
    store.put({ holderIdentity: 'pod-gone', leaseDurationSeconds: 15, acquireTime: T0 - 3_600_000, renewTime: T0 - 3_600_000, leaseTransitions: 3 });
    let now = T0;
    const b = candidate(store, 'pod-b', { clock: () => now });
    assert.deepEqual(await b.runOnce(), { action: 'follower', leader: false, holder: 'pod-gone' }, 'first sight starts the count');
    now = T0 + 14_999;
    assert.deepEqual(await b.runOnce(), { action: 'follower', leader: false, holder: 'pod-gone' }, 'still valid 1 ms before');
    now = T0 + 15_000;
    assert.deepEqual(await b.runOnce(), { action: 'acquired', leader: true });
    assert.deepEqual(store.record, { holderIdentity: 'pod-b', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 4 });
  });

  it('a renewTime in the future (clock skew) does not delay a takeover either', async () => {
    const store = new MemoryLeaseStore();
    store.put({ holderIdentity: 'pod-skewed', leaseDurationSeconds: 5, acquireTime: T0, renewTime: T0 + 86_400_000, leaseTransitions: 0 });
    let now = T0;
    const b = candidate(store, 'pod-b', { clock: () => now, leaseDurationMs: 5_000, renewIntervalMs: 1_000 });
    await b.runOnce();
    now = T0 + 5_000;
    assert.deepEqual(await b.runOnce(), { action: 'acquired', leader: true });
  });

  it('every write by the holder restarts the count: a live leader is never taken over', async () => {
    const store = new MemoryLeaseStore();
    const held = { holderIdentity: 'pod-x', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 0 };
    store.put(held);
    let now = T0;
    const b = candidate(store, 'pod-b', { clock: () => now });
    await b.runOnce();
    now = T0 + 10_000;
    store.put({ ...held, renewTime: now }); // pod-x renews: a new version
    await b.runOnce();
    now = T0 + 20_000; // 20 s since the first sight, 10 s since the renewal
    assert.equal((await b.runOnce()).action, 'follower');
    now = T0 + 25_000;
    assert.equal((await b.runOnce()).action, 'acquired');
  });

  it('a released lease (no holder) is taken at once', async () => {
    const store = new MemoryLeaseStore();
    store.put({ holderIdentity: '', leaseDurationSeconds: 1, acquireTime: T0, renewTime: T0, leaseTransitions: 2 });
    const b = candidate(store, 'pod-b', { clock: () => T0 });
    assert.deepEqual(await b.runOnce(), { action: 'acquired', leader: true });
    assert.equal(store.record?.leaseTransitions, 3);
  });

  it('a conflict on renewal (a stale version) means not leader, then follower of the new holder', async () => {
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { clock: () => T0 });
    const seen = changes(a);
    await a.runOnce();
    // Another writer slips in between a's read and its write.
    store.beforeWrite = () => {
      store.beforeWrite = undefined;
      store.put({ holderIdentity: 'pod-x', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 1 });
    };
    assert.deepEqual(await a.runOnce(), { action: 'conflict', leader: false });
    assert.equal(a.isLeader(), false);
    assert.deepEqual(seen, [true, false], 'onChange(false) fired');
    assert.deepEqual(await a.runOnce(), { action: 'follower', leader: false, holder: 'pod-x' }, 'a fresh lease held by another is not taken');
    assert.equal(store.record?.holderIdentity, 'pod-x');
  });

  it('a conflict on create (another candidate created it first) means not leader', async () => {
    const store = new MemoryLeaseStore();
    store.beforeWrite = (op) => {
      store.beforeWrite = undefined;
      assert.equal(op, 'create');
      store.put({ holderIdentity: 'pod-x', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 0 });
    };
    const a = candidate(store, 'pod-a', { clock: () => T0 });
    assert.deepEqual(await a.runOnce(), { action: 'conflict', leader: false });
    assert.equal(a.isLeader(), false);
    assert.deepEqual(store.callsBy('pod-a').map((c) => [c.op, c.outcome]), [['get', 'absent'], ['create', 'conflict']]);
  });

  it('two candidates racing for an empty store: exactly one leads, round after round', async () => {
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { clock: () => T0 });
    const b = candidate(store, 'pod-b', { clock: () => T0 });
    const watch = watchLeaders([a, b]);
    const first = await Promise.all([a.runOnce(), b.runOnce()]);
    assert.deepEqual(first.map((r) => r.action).sort(), ['conflict', 'created'], 'both read nothing; one create wins');
    for (let i = 0; i < 5; i++) await Promise.all([a.runOnce(), b.runOnce()]);
    assert.equal(a.isLeader() !== b.isLeader(), true, 'exactly one leader');
    assert.equal(watch.mostAtOnce(), 1, 'never two leaders at once');
  });

  it('isLeader() steps down once the clock reaches the local deadline', async () => {
    const store = new MemoryLeaseStore();
    let now = T0;
    const a = candidate(store, 'pod-a', { clock: () => now });
    const seen = changes(a);
    await a.runOnce();
    now = T0 + 14_999;
    assert.equal(a.isLeader(), true);
    now = T0 + 15_000;
    assert.equal(a.isLeader(), false, 'the deadline is the start of the last write + leaseDurationMs');
    assert.deepEqual(seen, [true, false]);
  });

  it('stop() releases the lease (holder cleared, 1 s) so a follower takes over without waiting', async () => {
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { clock: () => T0 }); // frozen clocks: expiry can never happen
    const b = candidate(store, 'pod-b', { clock: () => T0 });
    const seenA = changes(a);
    await a.runOnce();
    assert.equal((await b.runOnce()).action, 'follower');

    await a.stop();
    await a.stop(); // safe twice
    assert.equal(a.isLeader(), false);
    assert.deepEqual(seenA, [true, false]);
    const last = store.callsBy('pod-a').at(-1);
    assert.deepEqual([last?.op, last?.outcome, last?.record?.holderIdentity, last?.record?.leaseDurationSeconds], ['replace', 'ok', '', 1]);

    assert.deepEqual(await b.runOnce(), { action: 'acquired', leader: true });
    assert.equal(store.record?.holderIdentity, 'pod-b');
    assert.equal(store.record?.leaseTransitions, 1);
  });

  it('a follower stopping does not touch the lease', async () => {
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { clock: () => T0 });
    const b = candidate(store, 'pod-b', { clock: () => T0 });
    await a.runOnce();
    await b.runOnce();
    await b.stop();
    assert.ok(store.callsBy('pod-b').every((c) => c.op === 'get'), 'a follower only ever reads');
    assert.equal(store.record?.holderIdentity, 'pod-a');
  });

  it('refuses a renew interval that is not below the lease duration, and an empty identity', () => {
    const store = new MemoryLeaseStore().client('x');
    assert.throws(
      () => new KubernetesLeaseLeader({ store, identity: 'a', leaseDurationMs: 5000, renewIntervalMs: 5000 }),
      /renewIntervalMs \(5000\) must be less than leaseDurationMs \(5000\)/,
    );
    assert.throws(() => new KubernetesLeaseLeader({ store, identity: '' }), /identity must not be empty/);
  });
});

describe('KubernetesLeaseLeader: the campaign loop in mock time', () => {
  it('a failed round ends leadership at once, not at the deadline, and it comes back', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { leaseDurationMs: 5_000, renewIntervalMs: 50 });
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true);

    store.failWith = new Error('HTTP 500: injected');
    t.mock.timers.tick(50);
    await settle();
    assert.deepEqual(seen, [true, false], 'stepped down at the first failed round');
    assert.equal(Date.now() - T0, 50, '50 ms into a 5,000 ms lease');
    assert.equal(store.calls.at(-1)?.outcome, 'failed');

    store.failWith = undefined;
    t.mock.timers.tick(61); // a follower's round: 50 ms plus up to 20 % jitter
    await settle();
    assert.deepEqual(seen, [true, false, true], 'leads again');
    assert.equal(store.record?.holderIdentity, 'pod-a');
    assert.equal(store.record?.leaseTransitions, 0, 'same holder: no transition');
  });

  it('a store that stops answering: leadership ends at the local deadline, by the timer alone', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const store = new MemoryLeaseStore();
    const a = candidate(store, 'pod-a', { leaseDurationMs: 1_000, renewIntervalMs: 100, requestTimeoutMs: 60_000 });
    const seen = changes(a);
    await a.start();

    store.hang = true;
    t.mock.timers.tick(100); // the renewal is sent and never answered
    await settle();
    assert.equal(store.calls.at(-1)?.outcome, 'pending');
    // Nobody calls isLeader(): only the deadline timer can end leadership.
    t.mock.timers.tick(899);
    await settle();
    assert.deepEqual(seen, [true], 'still leader 1 ms before the deadline');
    t.mock.timers.tick(1);
    await settle();
    assert.deepEqual(seen, [true, false], 'stepped down at T0 + leaseDurationMs');
    assert.equal(store.calls.at(-1)?.outcome, 'pending', 'while the renewal is still unanswered');

    store.hang = false;
    await a.stop();
    assert.equal(store.calls.find((c) => c.op === 'replace' && c.record?.holderIdentity === 'pod-a' && c.outcome !== 'ok')?.outcome, 'failed', 'stop() aborted the hung call');
    assert.equal(store.record?.holderIdentity, '', 'and released the lease');
  });
});
