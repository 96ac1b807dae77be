import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createLeader, SERVICE_ACCOUNT_DIR } from '../../src/leader/create-leader.js';
import { KubernetesLeaseLeader } from '../../src/leader/kubernetes-lease-leader.js';
import type { Leader } from '../../src/leader/leader.js';
import { MysqlLockLeader } from '../../src/leader/mysql-lock-leader.js';
import { watchLeaders } from '../helpers/leaders.js';

const NAMESPACE = 'sluice-test';
const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/?]+))?(?:\?.*)?$/;
/** TEST_LOG=debug shows the leaders' logs. */
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

interface Recorded {
  method: string;
  path: string;
  authorization: string | undefined;
  status: number;
  body: LeaseObject | undefined;
}

/**
 * The Lease endpoints of a Kubernetes API server, over real HTTPS: GET/POST/PUT with
 * resourceVersion checks (409 on a stale one), 404 for a missing Lease, and a log of
 * every request with its Authorization header.
 */
class FakeKubeApi {
  readonly leases = new Map<string, LeaseObject>();
  readonly requests: Recorded[] = [];
  /** Answer every request with this status instead of serving it. */
  failWith: number | undefined;
  /** Never answer (a hung API server). */
  hang = false;
  /** Runs before a write is applied: lets a test slip in a competing write. */
  beforeWrite: ((method: string, key: string) => void) | undefined;
  private version = 1000;
  private readonly hung: ServerResponse[] = [];
  readonly server: Server;

  constructor(key: Buffer, cert: Buffer) {
    this.server = createServer({ key, cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const res of this.hung.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  releaseHung(): void {
    for (const res of this.hung.splice(0)) res.destroy();
  }

  /** Stores a lease as the server would, with a fresh resourceVersion. */
  put(namespace: string, lease: LeaseObject): LeaseObject {
    const stored: LeaseObject = structuredClone(lease);
    stored.metadata = { ...stored.metadata, namespace, resourceVersion: String(++this.version) };
    this.leases.set(`${namespace}/${stored.metadata.name}`, stored);
    return stored;
  }

  lease(name: string): LeaseObject | undefined {
    return this.leases.get(`${NAMESPACE}/${name}`);
  }

  requestsBy(token: string, name?: string): Recorded[] {
    return this.requests.filter(
      (r) => r.authorization === `Bearer ${token}` && (name === undefined || r.path.includes(`/leases/${name}`) || r.body?.metadata.name === name),
    );
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const body = raw ? (JSON.parse(raw) as LeaseObject) : undefined;
    const record: Recorded = { method, path, authorization: req.headers.authorization, status: 0, body };
    this.requests.push(record);
    if (this.hang) {
      this.hung.push(res);
      return;
    }
    const reply = (status: number, payload: unknown): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const failure = (status: number, reason: string, message: string): void =>
      reply(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code: status });

    if (this.failWith !== undefined) return failure(this.failWith, 'InternalError', 'injected failure');
    const match = LEASES.exec(path);
    if (!match) return failure(404, 'NotFound', `no route ${method} ${path}`);
    const namespace = match[1] ?? '';
    const name = match[2] ?? body?.metadata.name ?? '';
    const key = `${namespace}/${name}`;
    const current = this.leases.get(key);

    if (method === 'GET' && match[2]) {
      return current ? reply(200, current) : failure(404, 'NotFound', `leases "${name}" not found`);
    }
    if (method === 'POST' && !match[2] && body) {
      this.beforeWrite?.(method, key);
      if (this.leases.has(key)) return failure(409, 'AlreadyExists', `leases "${name}" already exists`);
      return reply(201, this.put(namespace, body));
    }
    if (method === 'PUT' && match[2] && body) {
      this.beforeWrite?.(method, key);
      const stored = this.leases.get(key);
      if (!stored) return failure(404, 'NotFound', `leases "${name}" not found`);
      if (body.metadata.resourceVersion !== stored.metadata.resourceVersion) {
        return failure(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version');
      }
      return reply(200, this.put(namespace, body));
    }
    return failure(405, 'MethodNotAllowed', `${method} not supported`);
  }
}

/** Polls until `check` holds; fails with `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

void describe('KubernetesLeaseLeader against a fake API server over HTTPS', () => {
  let root: string;
  let api: FakeKubeApi;
  const savedEnv = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  const running: Leader[] = [];
  let leaseCounter = 0;
  const nextLeaseName = (): string => `sluice-leader-${++leaseCounter}`;

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

  /** A candidate built the way the daemon builds it: createLeader → loadFromCluster(prefix). */
  function candidate(
    prefix: string,
    identity: string,
    leaseName: string,
    opts: { clock?: () => number; leaseDurationMs?: number; renewIntervalMs?: number; requestTimeoutMs?: number } = {},
  ): KubernetesLeaseLeader {
    let leader: Leader;
    if (opts.requestTimeoutMs === undefined) {
      leader = createLeader({
        identity,
        mysql: 'mysql://nobody@127.0.0.1:1/unused',
        serviceAccountPathPrefix: prefix,
        leaseName,
        leaseDurationMs: opts.leaseDurationMs ?? 15_000,
        renewIntervalMs: opts.renewIntervalMs ?? 50,
        clock: opts.clock,
        logger,
      });
    } else {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromCluster(prefix);
      leader = new KubernetesLeaseLeader({
        kubeConfig,
        namespace: NAMESPACE,
        identity,
        leaseName,
        leaseDurationMs: opts.leaseDurationMs ?? 15_000,
        renewIntervalMs: opts.renewIntervalMs ?? 50,
        requestTimeoutMs: opts.requestTimeoutMs,
        clock: opts.clock,
        logger,
      });
    }
    assert.ok(leader instanceof KubernetesLeaseLeader, 'in a cluster createLeader must pick the Lease');
    running.push(leader);
    return leader;
  }

  function changes(leader: Leader): boolean[] {
    const seen: boolean[] = [];
    leader.onChange((state) => seen.push(state));
    return seen;
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

  void test('outside a cluster createLeader picks the MySQL lock', () => {
    const noToken = join(root, 'empty');
    mkdirSync(noToken, { recursive: true });
    const viaPrefix = createLeader({ identity: 'x', mysql: 'mysql://nobody@127.0.0.1:1/db', serviceAccountPathPrefix: noToken });
    assert.ok(viaPrefix instanceof MysqlLockLeader, 'no mounted token → MySQL');
    const host = process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      const viaEnv = createLeader({ identity: 'x', mysql: 'mysql://nobody@127.0.0.1:1/db', serviceAccountPathPrefix: prefixA });
      assert.ok(viaEnv instanceof MysqlLockLeader, 'no KUBERNETES_SERVICE_HOST → MySQL');
    } finally {
      process.env.KUBERNETES_SERVICE_HOST = host;
    }
  });

  void test('rejects a renew interval that is not below the lease duration', () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromCluster(prefixA);
    assert.throws(
      () => new KubernetesLeaseLeader({ kubeConfig, namespace: NAMESPACE, identity: 'a', leaseDurationMs: 5000, renewIntervalMs: 5000 }),
      /renewIntervalMs \(5000\) must be less than leaseDurationMs \(5000\)/,
    );
  });

  void test('creates the Lease when absent, over HTTPS with the service-account token and namespace', async () => {
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name);
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true, 'leader once the first round created the Lease');
    assert.deepEqual(seen, [true]);

    const lease = api.lease(name);
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

  void test('the holder renews: renewTime advances, holder, acquireTime and transitions stay', async () => {
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name);
    await a.start();
    const acquired = api.lease(name)?.spec.acquireTime;
    await waitFor('three renewals', () => api.requestsBy('token-a', name).filter((r) => r.method === 'PUT' && r.status === 200).length >= 3);

    const puts = api.requestsBy('token-a', name).filter((r) => r.method === 'PUT');
    const renewTimes = puts.map((r) => r.body?.spec.renewTime ?? '');
    for (const put of puts) {
      assert.equal(put.body?.spec.holderIdentity, 'pod-a');
      assert.equal(put.body?.spec.acquireTime, acquired);
      assert.equal(put.body?.spec.leaseTransitions, 0);
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
    const a = candidate(prefixA, 'pod-a', name);
    const b = candidate(prefixB, 'pod-b', name);
    const watch = watchLeaders([a, b]);
    await Promise.all([a.start(), b.start()]);
    await waitFor('a leader', () => a.isLeader() || b.isLeader());
    const [leader, follower, followerToken] = a.isLeader() ? [a, b, 'token-b'] : [b, a, 'token-a'];
    const seenByFollower = api.requestsBy(followerToken, name).length;
    await waitFor('the follower to campaign five more rounds', () => api.requestsBy(followerToken, name).length >= seenByFollower + 5);

    assert.equal(leader.isLeader(), true);
    assert.equal(follower.isLeader(), false);
    assert.equal(watch.mostAtOnce(), 1, 'never two leaders at once');
    assert.equal(api.lease(name)?.spec.holderIdentity, leader === a ? 'pod-a' : 'pod-b');
  });

  void test('a 409 Conflict on renewal means not leader, and it stays follower of the new holder', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name, { clock: () => now });
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
    await waitFor('a to step down', () => !a.isLeader());
    assert.deepEqual(seen, [true, false], 'onChange(false) fired');
    assert.ok(
      api.requestsBy('token-a', name).some((r) => r.method === 'PUT' && r.status === 409),
      'the server answered 409 to a',
    );

    const seenSoFar = api.requestsBy('token-a', name).length;
    await waitFor('three more rounds', () => api.requestsBy('token-a', name).length >= seenSoFar + 3);
    assert.equal(a.isLeader(), false, 'a fresh lease held by another is not taken');
    assert.equal(api.lease(name)?.spec.holderIdentity, 'pod-x');
  });

  void test('a 409 on create (another candidate created it first) means not leader', async () => {
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name, { clock: () => Date.parse('2030-01-01T00:00:00Z') });
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
    await waitFor('another round', () => api.requestsBy('token-a', name).length >= 3);
    assert.equal(a.isLeader(), false);
  });

  void test('takes over an expired lease once it has not changed for its duration, by our clock', async () => {
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
    const b = candidate(prefixB, 'pod-b', name, { clock: () => now });
    await b.start();
    assert.equal(b.isLeader(), false, 'first sight of a record starts its expiry clock');
    await waitFor('three rounds', () => api.requestsBy('token-b', name).length >= 3);
    assert.equal(b.isLeader(), false, 'not before leaseDurationSeconds have passed');

    now += 14_000;
    const before14 = api.requestsBy('token-b', name).length;
    await waitFor('two rounds at +14 s', () => api.requestsBy('token-b', name).length >= before14 + 2);
    assert.equal(b.isLeader(), false, 'still valid at +14 s');

    now += 1_001;
    await waitFor('b to take over', () => b.isLeader());
    const lease = api.lease(name);
    assert.equal(lease?.spec.holderIdentity, 'pod-b');
    assert.equal(lease?.spec.leaseTransitions, 4);
    assert.equal(lease?.spec.acquireTime, lease?.spec.renewTime);
    assert.equal(lease?.spec.renewTime, new Date(now).toISOString().replace('Z', '000Z'));
  });

  void test('renewal answered with 500: leadership ends at that failed round, then comes back', async () => {
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name, { leaseDurationMs: 5_000, renewIntervalMs: 50 });
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true);

    api.failWith = 500;
    const failedAt = Date.now();
    await waitFor('a to step down', () => !a.isLeader(), 5_000);
    const elapsed = Date.now() - failedAt;
    // The deadline alone would take up to 5 s; a failed round must not wait for it.
    assert.ok(elapsed < 1_000, `stepped down ${elapsed} ms after renewals started failing`);
    assert.deepEqual(seen, [true, false]);
    assert.ok(api.requestsBy('token-a', name).some((r) => r.status === 500));

    api.failWith = undefined;
    await waitFor('a to lead again', () => a.isLeader());
    assert.equal(api.lease(name)?.spec.holderIdentity, 'pod-a');
    assert.equal(api.lease(name)?.spec.leaseTransitions, 0, 'same holder: no transition');
  });

  void test('an API server that stops answering: leadership ends at the local deadline, not when a call returns', async () => {
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name, { leaseDurationMs: 1_000, renewIntervalMs: 100, requestTimeoutMs: 60_000 });
    const seen = changes(a);
    await a.start();
    assert.equal(a.isLeader(), true);

    api.hang = true;
    const hungAt = Date.now();
    // Not calling isLeader(): the deadline timer alone must fire onChange(false).
    await waitFor('onChange(false)', () => seen.includes(false), 3_000);
    const elapsed = Date.now() - hungAt;
    assert.ok(elapsed <= 1_000 + 150, `stepped down ${elapsed} ms after the API hung (lease 1000 ms)`);
    assert.equal(a.isLeader(), false);
    assert.ok(api.requestsBy('token-a', name).at(-1)?.status === 0, 'the renewal is still unanswered');

    api.hang = false;
    const stopStarted = Date.now();
    await a.stop();
    assert.ok(Date.now() - stopStarted < 5_000, 'stop() aborts the hung call instead of waiting for it');
  });

  void test('stop() releases the lease so another candidate takes over at once', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z'); // frozen: expiry can never happen
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name, { clock: () => now });
    const b = candidate(prefixB, 'pod-b', name, { clock: () => now });
    const seenA = changes(a);
    await a.start();
    await b.start();
    await waitFor('b to campaign', () => api.requestsBy('token-b', name).length >= 2);
    assert.equal(a.isLeader(), true);
    assert.equal(b.isLeader(), false);

    await a.stop();
    await a.stop(); // safe twice
    assert.equal(a.isLeader(), false);
    assert.deepEqual(seenA, [true, false]);
    const last = api.requestsBy('token-a', name).at(-1);
    assert.equal(last?.method, 'PUT');
    assert.equal(last?.status, 200);
    assert.equal(last?.body?.spec.holderIdentity, '', 'holder cleared');
    assert.equal(last?.body?.spec.leaseDurationSeconds, 1);

    await waitFor('b to take over without any expiry', () => b.isLeader());
    assert.equal(api.lease(name)?.spec.holderIdentity, 'pod-b');
    assert.equal(api.lease(name)?.spec.leaseTransitions, 1);
  });

  void test('a follower stopping does not touch the lease', async () => {
    const name = nextLeaseName();
    const a = candidate(prefixA, 'pod-a', name);
    const b = candidate(prefixB, 'pod-b', name);
    await a.start();
    await b.start();
    assert.equal(b.isLeader(), false);
    await b.stop();
    assert.ok(
      api.requestsBy('token-b', name).every((r) => r.method === 'GET'),
      'a follower only ever reads',
    );
    assert.equal(api.lease(name)?.spec.holderIdentity, 'pod-a');
  });

  void test('every request carried a service-account bearer token', () => {
    assert.ok(api.requests.length > 20);
    const tokens = new Set(api.requests.map((r) => r.authorization));
    assert.deepEqual([...tokens].sort(), ['Bearer token-a', 'Bearer token-b']);
  });
});
