// KubernetesLeaseStore, the adapter of the Lease election to @kubernetes/client-node,
// against a fake API server over real HTTPS: service-account token and namespace, the
// MicroTime format, 404/409 mapping, a hung server, release. The election's rules and
// timing are unit-tested on an in-memory store (test/unit/kubernetes-lease-leader.test.ts).
// Over 300 lines because every case shares one HTTPS server, certificate and pair of
// service-account dirs, set up once here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createLeader, SERVICE_ACCOUNT_DIR } from '../../src/leader/create-leader.js';
import { KubernetesLeaseLeader } from '../../src/leader/kubernetes-lease-leader.js';
import { KubernetesLeaseStore } from '../../src/leader/kubernetes-lease-store.js';
import type { Leader } from '../../src/leader/leader.js';
import { MysqlLockLeader } from '../../src/leader/mysql-lock-leader.js';
import { FakeKubeApi, type LeaseObject } from '../helpers/fake-kube-api.js';
import { changes, watchLeaders } from '../helpers/leaders.js';
import { waitFor } from '../helpers/wait-for.js';

const NAMESPACE = 'sluice-test';
/** TEST_LOG=debug shows the leaders' logs. */
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** Polls `check` every 5 ms; generous deadlines, since a busy machine only slows HTTP down. */
function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<true> {
  return waitFor(() => check() || undefined, { timeoutMs, intervalMs: 5, message: what });
}

void describe('KubernetesLeaseStore: the Lease election against a fake API server over HTTPS', () => {
  let root: string;
  let api: FakeKubeApi;
  const savedEnv = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  const running: Leader[] = [];
  let leaseCounter = 0;
  const nextLeaseName = (): string => `sluice-leader-${++leaseCounter}`;
  const leaseOf = (name: string): LeaseObject | undefined => api.lease(NAMESPACE, name);

  /** A service-account directory as Kubernetes mounts it, under its own path prefix. */
  function serviceAccount(token: string, cert: Buffer): string {
    const prefix = join(root, token);
    const dir = `${prefix}${SERVICE_ACCOUNT_DIR}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), token);
    writeFileSync(join(dir, 'ca.crt'), cert);
    writeFileSync(join(dir, 'namespace'), NAMESPACE);
    return prefix;
  }

  let prefixA: string;
  let prefixB: string;

  /**
   * A candidate built the way the daemon builds it: createLeader → loadFromCluster(prefix);
   * with a requestTimeoutMs (which createLeader does not take), from a KubernetesLeaseStore.
   */
  async function candidate(
    prefix: string,
    identity: string,
    leaseName: string,
    opts: { clock?: () => number; leaseDurationMs?: number; renewIntervalMs?: number; requestTimeoutMs?: number } = {},
  ): Promise<KubernetesLeaseLeader> {
    const timing = { leaseDurationMs: opts.leaseDurationMs ?? 15_000, renewIntervalMs: opts.renewIntervalMs ?? 50, clock: opts.clock };
    const leader =
      opts.requestTimeoutMs === undefined
        ? await createLeader({ identity, mysql: 'mysql://nobody@127.0.0.1:1/unused', serviceAccountPathPrefix: prefix, leaseName, logger, ...timing })
        : new KubernetesLeaseLeader({
            store: new KubernetesLeaseStore({ serviceAccountPathPrefix: prefix, leaseName }),
            identity,
            requestTimeoutMs: opts.requestTimeoutMs,
            logger,
            ...timing,
          });
    assert.ok(leader instanceof KubernetesLeaseLeader, 'in a cluster createLeader must pick the Lease');
    running.push(leader);
    return leader;
  }


  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'sluice-kube-'));
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', join(root, 'server.key'),
        '-out', join(root, 'server.crt'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(root, 'server.crt'));
    api = new FakeKubeApi(readFileSync(join(root, 'server.key')), cert);
    const port = await api.listen();
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = String(port);
    prefixA = serviceAccount('token-a', cert);
    prefixB = serviceAccount('token-b', cert);
  });

  afterEach(async () => {
    api.hang = false;
    api.failWith = undefined;
    api.beforeWrite = undefined;
    api.releaseHung();
    await Promise.all(running.splice(0).map((leader) => leader.stop()));
  });

  after(async () => {
    await api.close();
    rmSync(root, { recursive: true, force: true });
    if (savedEnv.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    else process.env.KUBERNETES_SERVICE_HOST = savedEnv.host;
    if (savedEnv.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    else process.env.KUBERNETES_SERVICE_PORT = savedEnv.port;
  });

  void test('outside a cluster createLeader picks the MySQL lock', async () => {
    const noToken = join(root, 'empty');
    mkdirSync(noToken, { recursive: true });
    const viaPrefix = await createLeader({ identity: 'x', mysql: 'mysql://nobody@127.0.0.1:1/db', serviceAccountPathPrefix: noToken });
    assert.ok(viaPrefix instanceof MysqlLockLeader, 'no mounted token → MySQL');
    const host = process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      const viaEnv = await createLeader({ identity: 'x', mysql: 'mysql://nobody@127.0.0.1:1/db', serviceAccountPathPrefix: prefixA });
      assert.ok(viaEnv instanceof MysqlLockLeader, 'no KUBERNETES_SERVICE_HOST → MySQL');
    } finally {
      process.env.KUBERNETES_SERVICE_HOST = host;
    }
  });

  void test('the store names the namespace from the service-account dir, or the one given', () => {
    assert.equal(new KubernetesLeaseStore({ serviceAccountPathPrefix: prefixA }).name, `${NAMESPACE}/sluice-leader`);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromCluster(prefixA);
    assert.equal(new KubernetesLeaseStore({ kubeConfig, namespace: 'other', leaseName: 'l' }).name, 'other/l');
  });

  void test('creates the Lease when absent, over HTTPS with the service-account token and namespace', async () => {
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name);
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true, 'leader once the first round created the Lease');
    assert.deepEqual(seen, [true]);

    const lease = leaseOf(name);
    assert.ok(lease, 'Lease stored in the namespace from the service-account dir');
    assert.equal(lease.spec.holderIdentity, 'pod-a');
    assert.equal(lease.spec.leaseDurationSeconds, 15);
    assert.equal(lease.spec.leaseTransitions, 0);
    assert.match(lease.spec.acquireTime ?? '', MICRO_TIME);
    assert.match(lease.spec.renewTime ?? '', MICRO_TIME);

    const mine = api.requestsBy('token-a', name);
    assert.deepEqual(
      mine.slice(0, 2).map((r) => [r.method, r.status]),
      [['GET', 404], ['POST', 201]],
    );
    assert.ok(mine.every((r) => r.authorization === 'Bearer token-a'), 'bearer token read from the token file');
  });

  void test('the holder renews with PUT: renewTime advances, holder, acquireTime and transitions stay', async () => {
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name);
    await a.start();
    const acquired = leaseOf(name)?.spec.acquireTime;
    await until('three renewals', () => api.requestsBy('token-a', name).filter((r) => r.method === 'PUT' && r.status === 200).length >= 3);

    const puts = api.requestsBy('token-a', name).filter((r) => r.method === 'PUT');
    const renewTimes = puts.map((r) => r.body?.spec.renewTime ?? '');
    for (const put of puts) {
      assert.equal(put.body?.spec.holderIdentity, 'pod-a');
      assert.equal(put.body?.spec.acquireTime, acquired, 'acquireTime goes back exactly as the server stored it');
      assert.equal(put.body?.spec.leaseTransitions, 0);
      assert.ok(put.body?.metadata.resourceVersion, 'every PUT names the version it replaces');
    }
    assert.deepEqual([...renewTimes].sort(), renewTimes, 'renewTime never goes back');
    assert.ok(renewTimes[renewTimes.length - 1]! > renewTimes[0]!, 'renewTime advances');
    assert.equal(
      api.requestsBy('token-a', name).filter((r) => r.method === 'GET').length,
      1,
      'the leader renews from the Lease it wrote, without reading it again',
    );
    assert.equal(a.isLeader(), true);
  });

  void test('two candidates: exactly one leader', async () => {
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name);
    const b = await candidate(prefixB, 'pod-b', name);
    const watch = watchLeaders([a, b]);
    await Promise.all([a.start(), b.start()]);
    await until('a leader', () => a.isLeader() || b.isLeader());
    const [leader, follower, followerToken] = a.isLeader() ? [a, b, 'token-b'] : [b, a, 'token-a'];
    const seenByFollower = api.requestsBy(followerToken, name).length;
    await until('the follower to campaign five more rounds', () => api.requestsBy(followerToken, name).length >= seenByFollower + 5);

    assert.equal(leader.isLeader(), true);
    assert.equal(follower.isLeader(), false);
    assert.equal(watch.mostAtOnce(), 1, 'never two leaders at once');
    assert.equal(leaseOf(name)?.spec.holderIdentity, leader === a ? 'pod-a' : 'pod-b');
  });

  void test('a 409 Conflict on renewal is a conflict: not leader, then follower of the new holder', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name, { clock: () => now });
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true);

    // Another writer slips in between a's read and its write: a's resourceVersion is stale.
    api.beforeWrite = (method, key) => {
      api.beforeWrite = undefined;
      const current = api.leases.get(key);
      assert.ok(current && method === 'PUT');
      api.put(NAMESPACE, { ...current, spec: { ...current.spec, holderIdentity: 'pod-x', renewTime: new Date(now).toISOString() } });
    };
    await until('a to step down', () => !a.isLeader());
    assert.deepEqual(seen, [true, false], 'onChange(false) fired');
    assert.ok(
      api.requestsBy('token-a', name).some((r) => r.method === 'PUT' && r.status === 409),
      'the server answered 409 to a',
    );

    const seenSoFar = api.requestsBy('token-a', name).length;
    await until('three more rounds', () => api.requestsBy('token-a', name).length >= seenSoFar + 3);
    assert.equal(a.isLeader(), false, 'a fresh lease held by another is not taken');
    assert.equal(leaseOf(name)?.spec.holderIdentity, 'pod-x');
  });

  void test('a 409 on create (another candidate created it first) is a conflict: not leader', async () => {
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name, { clock: () => Date.parse('2030-01-01T00:00:00Z') });
    api.beforeWrite = (method, key) => {
      api.beforeWrite = undefined;
      assert.equal(method, 'POST');
      api.put(NAMESPACE, { metadata: { name: key.split('/')[1] ?? '' }, spec: { holderIdentity: 'pod-x', leaseDurationSeconds: 15 } });
    };
    await a.start();
    assert.equal(a.isLeader(), false);
    assert.deepEqual(
      api.requestsBy('token-a', name).map((r) => [r.method, r.status]).slice(0, 2),
      [['GET', 404], ['POST', 409]],
    );
    await until('another round', () => api.requestsBy('token-a', name).length >= 3);
    assert.equal(a.isLeader(), false);
  });

  void test('takes over an expired lease: holder, transitions and MicroTimes as the server stores them', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const name = nextLeaseName();
    api.put(NAMESPACE, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name },
      spec: {
        holderIdentity: 'pod-gone',
        leaseDurationSeconds: 15,
        acquireTime: '2029-12-31T23:00:00.000000Z',
        renewTime: '2029-12-31T23:00:00.000000Z',
        leaseTransitions: 3,
      },
    });
    const b = await candidate(prefixB, 'pod-b', name, { clock: () => now });
    await b.start();
    assert.equal(b.isLeader(), false, 'first sight of a record starts its expiry clock');

    now += 15_001;
    await until('b to take over', () => b.isLeader());
    const lease = leaseOf(name);
    assert.equal(lease?.spec.holderIdentity, 'pod-b');
    assert.equal(lease?.spec.leaseTransitions, 4);
    assert.equal(lease?.spec.acquireTime, lease?.spec.renewTime);
    assert.equal(lease?.spec.renewTime, new Date(now).toISOString().replace('Z', '000Z'));
  });

  void test('a renewal answered with 500 ends leadership; it comes back once the server answers', async () => {
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name, { leaseDurationMs: 5_000, renewIntervalMs: 50 });
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true);

    api.failWith = 500;
    await until('a to step down', () => !a.isLeader());
    assert.deepEqual(seen, [true, false]);
    assert.ok(api.requestsBy('token-a', name).some((r) => r.status === 500));

    api.failWith = undefined;
    await until('a to lead again', () => a.isLeader());
    assert.equal(leaseOf(name)?.spec.holderIdentity, 'pod-a');
    assert.equal(leaseOf(name)?.spec.leaseTransitions, 0, 'same holder: no transition');
  });

  void test('an API server that stops answering: leadership ends while the call hangs, and stop() aborts it', async () => {
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name, { leaseDurationMs: 1_000, renewIntervalMs: 100, requestTimeoutMs: 60_000 });
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true);

    api.hang = true;
    // Not calling isLeader(): the deadline timer alone must fire onChange(false).
    await until('onChange(false)', () => seen.includes(false));
    assert.equal(a.isLeader(), false);
    assert.ok(api.requestsBy('token-a', name).at(-1)?.status === 0, 'the renewal is still unanswered');

    api.hang = false;
    await a.stop(); // a request timeout of 60 s: only the abort ends the hung call within the test's time
  });

  void test('stop() releases the lease so another candidate takes over at once', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z'); // frozen: expiry can never happen
    const name = nextLeaseName();
    const a = await candidate(prefixA, 'pod-a', name, { clock: () => now });
    const b = await candidate(prefixB, 'pod-b', name, { clock: () => now });
    await a.start();
    await b.start();
    await until('b to campaign', () => api.requestsBy('token-b', name).length >= 2);
    assert.equal(a.isLeader(), true);
    assert.equal(b.isLeader(), false);

    await a.stop();
    const last = api.requestsBy('token-a', name).at(-1);
    assert.equal(last?.method, 'PUT');
    assert.equal(last?.status, 200);
    assert.equal(last?.body?.spec.holderIdentity, '', 'holder cleared');
    assert.equal(last?.body?.spec.leaseDurationSeconds, 1);

    await until('b to take over without any expiry', () => b.isLeader());
    assert.equal(leaseOf(name)?.spec.holderIdentity, 'pod-b');
    assert.equal(leaseOf(name)?.spec.leaseTransitions, 1);
  });

  void test('every request carried a service-account bearer token', () => {
    assert.ok(api.requests.length > 20);
    const tokens = new Set(api.requests.map((r) => r.authorization));
    assert.deepEqual([...tokens].sort(), ['Bearer token-a', 'Bearer token-b']);
  });
});
