// Offline proof that k8s/ deploys what the daemon expects: every manifest parses, each
// kustomization builds, every object validates against the Kubernetes and KEDA schemas
// and declares no field the API does not know, and the manifests agree with the daemon
// (port, probe paths, env names, RBAC, shutdown grace) and with the image.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { BlockList, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { parseAllowList } from '../../src/handlers/http-allow-list.js';
import {
  type Container,
  findKubectl,
  type K8sObject,
  K8S_DIR,
  kustomize,
  objectName,
  parseYamlDocuments,
  podTemplate,
  resolvePort,
  ROOT,
  type SecurityContext,
  schemaErrors,
  sourceDocuments,
  unknownFields,
  yamlFiles,
} from '../helpers/k8s.js';

const BUILDS = ['k8s', 'k8s/overlays/demo', 'k8s/overlays/keda'] as const;
type Build = (typeof BUILDS)[number];

const HTTP_PORT = 9090;
const NAMESPACE = 'sluice';
const LEASE_NAME = 'sluice-leader';
const SELECTOR_LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance'];
/** Variables the daemon reads besides DESIGN.md's table (Kubernetes downward API, tuning). */
const EXTRA_ENV = ['POD_NAME', 'POD_NAMESPACE', 'SLUICE_PREFETCH'];
/** What the demo's mysql image documents (server set-up and client). */
const MYSQL_IMAGE_ENV = ['MYSQL_ROOT_PASSWORD', 'MYSQL_DATABASE', 'MYSQL_USER', 'MYSQL_PASSWORD'];

const packageVersion = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const kubectl = findKubectl();

// ---- rendering, once per build -----------------------------------------------------------

const renders = new Map<Build, K8sObject[]>();
function render(build: Build): K8sObject[] {
  if (!kubectl) throw new Error('kubectl is not installed');
  let objects = renders.get(build);
  if (!objects) {
    objects = kustomize(kubectl, build);
    renders.set(build, objects);
  }
  return objects;
}

const NO_KUBECTL = 'kubectl is not installed (needed for `kubectl kustomize`; e.g. apt-get install kubectl)';
const NO_KUBECTL_FILES_ONLY = 'kubectl is not installed: checked the files in k8s/ only, not their kustomize output';

/** The rendered objects of every build, or undefined after skipping `t` without kubectl. */
function renderedOrSkip(t: TestContext): Map<Build, K8sObject[]> | undefined {
  if (!kubectl) {
    t.skip(NO_KUBECTL);
    return undefined;
  }
  return new Map(BUILDS.map((b) => [b, render(b)]));
}

function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
}
function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name);
  assert.equal(found.length, 1, `expected one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
  return found[0] as K8sObject;
}

/** The sluice Deployment and its container. */
function sluice(objects: K8sObject[]): { deployment: K8sObject; container: Container } {
  const deployment = one(objects, 'Deployment', 'sluice');
  const container = podTemplate(deployment)?.spec.containers.find((c) => c.name === 'sluice');
  assert.ok(container, 'the Deployment has a container named sluice');
  return { deployment, container };
}

/** The ConfigMap the sluice container reads its settings from (envFrom). */
function sluiceSettings(objects: K8sObject[]): Record<string, string> {
  const { container } = sluice(objects);
  const names = (container.envFrom ?? []).flatMap((e) => (e.configMapRef ? [e.configMapRef.name] : []));
  assert.equal(names.length, 1, 'the sluice container reads one ConfigMap through envFrom');
  return one(objects, 'ConfigMap', names[0]).data as Record<string, string>;
}

/** A Secret's values, decoded (kustomize emits `data`, hand-written ones `stringData`). */
function secretValues(secret: K8sObject): Record<string, string> {
  const data = Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]): [string, string] => [k, Buffer.from(v, 'base64').toString('utf8')]);
  return { ...Object.fromEntries(data), ...((secret.stringData ?? {}) as Record<string, string>) };
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

interface NetworkPolicyPeer {
  ipBlock?: { cidr: string; except?: string[] };
  namespaceSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  podSelector?: unknown;
}
interface EgressRule {
  to?: NetworkPolicyPeer[];
  ports?: Array<{ port?: number | string; endPort?: number; protocol?: string }>;
}

function cidrList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net = '', prefix = ''] = cidr.split('/');
    list.addSubnet(net, Number(prefix), isIPv6(net) ? 'ipv6' : 'ipv4');
  }
  return list;
}

/**
 * Whether egress `rules` let the pod reach `address`:`port` when that address is outside the
 * cluster (no pod, no node): only ipBlock peers, or a rule without `to`, can match it.
 */
function egressAllowsExternal(rules: readonly EgressRule[], address: string, port: number, protocol = 'TCP'): boolean {
  const type = isIPv6(address) ? 'ipv6' : 'ipv4';
  return rules.some((rule) => {
    const portOk =
      rule.ports === undefined ||
      rule.ports.length === 0 ||
      rule.ports.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || (typeof p.port === 'number' && port >= p.port && port <= (p.endPort ?? p.port))));
    const peerOk =
      rule.to === undefined ||
      rule.to.length === 0 ||
      rule.to.some((peer) => {
        const block = peer.ipBlock;
        // One family per ipBlock (BlockList alone would match IPv4 against ::/0 as ::ffff:a.b.c.d).
        if (block === undefined || isIPv6(block.cidr.split('/')[0] ?? '') !== (type === 'ipv6')) return false;
        return cidrList([block.cidr]).check(address, type) && !cidrList(block.except ?? []).check(address, type);
      });
    return portOk && peerOk;
  });
}

/** Every .ts file under src/, for checks of what the code really calls. */
function sourceTexts(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceTexts(join(dir, e.name)) : e.name.endsWith('.ts') ? [readFileSync(join(dir, e.name), 'utf8')] : [],
  );
}

/** Column names of the jobs table, and of its index jobs_claim, from migrations/*.sql. */
function jobsSchema(): { columns: Set<string>; claimIndex: string[] } {
  const dir = join(ROOT, 'migrations');
  const sql = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8').replace(/--.*$/gm, ''))
    .join('\n');
  const create = /CREATE TABLE(?: IF NOT EXISTS)? `?jobs`? \(([\s\S]*?)\n\)\s*ENGINE/i.exec(sql);
  assert.ok(create?.[1], 'migrations create the jobs table');
  const columns = new Set<string>();
  for (const line of create[1].split('\n')) {
    const m = /^\s*`?([a-z_][a-z0-9_]*)`?\s+(?:BIGINT|INT|TINYINT|SMALLINT|VARCHAR|CHAR|TEXT|JSON|DATETIME|TIMESTAMP|BOOLEAN|DOUBLE|DECIMAL|ENUM)\b/i.exec(line);
    if (m?.[1] && !/^(KEY|PRIMARY|UNIQUE|CONSTRAINT|INDEX)$/i.test(m[1])) columns.add(m[1].toLowerCase());
  }
  for (const alter of sql.matchAll(/ALTER TABLE `?jobs`?[^;]*/gi)) {
    for (const m of alter[0].matchAll(/ADD COLUMN `?([a-z_][a-z0-9_]*)`?/gi)) if (m[1]) columns.add(m[1].toLowerCase());
  }
  // The last definition wins: a later migration may redefine the index.
  const index = [...sql.matchAll(/KEY jobs_claim \(([^)]*)\)/gi)].at(-1);
  assert.ok(index?.[1], 'migrations define the index jobs_claim');
  return { columns, claimIndex: index[1].split(',').map((c) => c.trim().replace(/`/g, '').toLowerCase()) };
}

// ---- files and layout ----------------------------------------------------------------------
describe('k8s/ files and kustomize builds', () => {

  it('every YAML file under k8s/ parses', () => {
    const files = yamlFiles();
    for (const expected of ['kustomization.yaml', 'base/kustomization.yaml', 'overlays/demo/kustomization.yaml', 'overlays/keda/kustomization.yaml']) {
      assert.ok(files.includes(join(K8S_DIR, expected)), `k8s/${expected} exists`);
    }
    for (const file of files) {
      const docs = parseYamlDocuments(readFileSync(file, 'utf8'), file);
      assert.ok(docs.length > 0, `${file} holds at least one document`);
    }
  });

  it('k8s/ applies the base; overlays live beside it, not inside it', () => {
    const read = (p: string): { resources?: string[] } =>
      parseYamlDocuments(readFileSync(join(K8S_DIR, p), 'utf8'), p)[0] as { resources?: string[] };
    assert.deepEqual(read('kustomization.yaml').resources, ['base']);
    assert.ok(!(read('base/kustomization.yaml').resources ?? []).some((r) => r.includes('..') || r.includes('overlays')), 'the base refers to nothing outside itself');
    for (const overlay of ['demo', 'keda']) {
      assert.ok(read(`overlays/${overlay}/kustomization.yaml`).resources?.includes('../../base'), `overlays/${overlay} builds on ../../base`);
    }
  });

  for (const build of BUILDS) {
    it(`kubectl kustomize builds ${build}`, (t) => {
      if (!kubectl) return t.skip(NO_KUBECTL);
      const objects = render(build);
      const kinds = new Set(objects.map((o) => o.kind));
      const expected = ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Secret', 'Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy'];
      if (build === 'k8s/overlays/demo') expected.push('StatefulSet', 'Job');
      if (build === 'k8s/overlays/keda') expected.push('ScaledObject', 'TriggerAuthentication');
      for (const kind of expected) assert.ok(kinds.has(kind), `${build} renders a ${kind}`);
      for (const o of objects) {
        if (o.kind === 'Namespace') assert.equal(o.metadata?.name, NAMESPACE);
        else assert.equal(o.metadata?.namespace, NAMESPACE, `${objectName(o)} is in namespace ${NAMESPACE}`);
        assert.equal(o.metadata?.labels?.['app.kubernetes.io/part-of'], 'sluice', `${objectName(o)} has the recommended labels`);
        assert.ok(o.metadata?.labels?.['app.kubernetes.io/name'], `${objectName(o)} has app.kubernetes.io/name`);
      }
    });
  }
});

// ---- schemas -------------------------------------------------------------------------------
describe('k8s/ objects against the API schemas', () => {

  it('every object validates against the Kubernetes and KEDA schemas', (t) => {
    if (!kubectl) t.diagnostic(NO_KUBECTL_FILES_ONLY);
    const objects = [
      ...sourceDocuments().filter((d) => !d.patch).map((d) => d.obj),
      ...(kubectl ? BUILDS.flatMap(render) : []),
    ];
    assert.ok(objects.length > 10);
    assert.deepEqual(objects.flatMap(schemaErrors), []);
  });

  it('no manifest has a field that the Kubernetes or KEDA API does not define', (t) => {
    const inputs = sourceDocuments().map((d) => ({ label: `${d.file} ${objectName(d.obj)}`, obj: d.obj }));
    const rendered = kubectl ? BUILDS.flatMap((b) => render(b).map((obj) => ({ label: `${b} ${objectName(obj)}`, obj }))) : [];
    if (!kubectl) t.diagnostic(NO_KUBECTL_FILES_ONLY);
    assert.deepEqual(unknownFields([...inputs, ...rendered]), []);
  });

  it('the strict check finds unknown fields at any depth, in core and KEDA kinds', () => {
    const deployment = sourceDocuments().find((d) => d.obj.kind === 'Deployment')?.obj;
    const scaled = sourceDocuments().find((d) => d.obj.kind === 'ScaledObject')?.obj;
    assert.ok(deployment && scaled);
    const badDeployment = structuredClone(deployment) as K8sObject & { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    const container = badDeployment.spec.template.spec.containers[0];
    assert.ok(container);
    container.livenessprobe = { httpGet: { path: '/healthz', port: HTTP_PORT } };
    (container.readinessProbe as { httpGet: Record<string, unknown> }).httpGet.paht = '/readyz';
    const badScaled = structuredClone(scaled) as K8sObject & { spec: Record<string, unknown> };
    badScaled.spec.maxReplicas = 5;
    assert.deepEqual(
      unknownFields([
        { label: 'deployment', obj: badDeployment },
        { label: 'scaled', obj: badScaled },
      ]).sort(),
      [
        'deployment: spec.template.spec.containers[0].livenessprobe',
        'deployment: spec.template.spec.containers[0].readinessProbe.httpGet.paht',
        'scaled: spec.maxReplicas',
      ],
    );
    // Maps with free keys (labels, ConfigMap data, KEDA trigger metadata) take any key.
    assert.deepEqual(unknownFields([{ label: 'deployment', obj: deployment }, { label: 'scaled', obj: scaled }]), []);
  });
});

// ---- agreement with the daemon ---------------------------------------------------------------
describe('k8s/ manifests agree with the daemon', () => {

  it('probes and the metrics Service use the daemon port and its /healthz and /readyz', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    const code = sourceTexts().join('\n');
    for (const path of ['/healthz', '/readyz', '/metrics']) assert.ok(code.includes(`'${path}'`), `the daemon serves ${path}`);
    for (const [build, objects] of rendered) {
      const { container } = sluice(objects);
      const config = sluiceSettings(objects);
      assert.equal(Number(config.SLUICE_HTTP_PORT ?? HTTP_PORT), HTTP_PORT, `${build}: SLUICE_HTTP_PORT`);
      assert.deepEqual(container.ports?.map((p) => [p.name, p.containerPort]), [['metrics', HTTP_PORT]], `${build}: container port`);
      const probes = { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' } as const;
      for (const [kind, path] of Object.entries(probes) as Array<[keyof typeof probes, string]>) {
        const probe = container[kind]?.httpGet;
        assert.ok(probe, `${build}: ${kind} is an HTTP probe`);
        assert.equal(probe.path, path, `${build}: ${kind} path`);
        assert.equal(resolvePort(container, probe.port), HTTP_PORT, `${build}: ${kind} port`);
      }
      const service = one(objects, 'Service', 'sluice-metrics');
      const spec = service.spec as { selector: Record<string, string>; ports: Array<{ port: number; targetPort: number | string }> };
      assert.ok(matches(spec.selector, podTemplate(sluice(objects).deployment)?.metadata?.labels), `${build}: the Service selects the sluice pods`);
      assert.deepEqual(spec.ports.map((p) => resolvePort(container, p.targetPort)), [HTTP_PORT]);
      const annotations = service.metadata?.annotations ?? {};
      assert.equal(annotations['prometheus.io/scrape'], 'true');
      assert.equal(annotations['prometheus.io/port'], String(HTTP_PORT));
      assert.equal(annotations['prometheus.io/path'], '/metrics');
    }
  });

  it('the ConfigMap is a configuration the daemon accepts, as the pods see it', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    for (const [build, objects] of rendered) {
      const settings = sluiceSettings(objects);
      const databaseUrl = secretValues(one(objects, 'Secret', 'database-url')).DATABASE_URL;
      const config = loadConfig({ ...settings, DATABASE_URL: databaseUrl, POD_NAME: 'sluice-0', POD_NAMESPACE: NAMESPACE });
      assert.equal(config.httpPort, HTTP_PORT, build);
      assert.equal(config.workerId, 'sluice-0', `${build}: the worker id is the pod name`);
      assert.equal(config.namespace, NAMESPACE, `${build}: the Lease namespace is the pod's`);
    }
  });

  it('the settings the base ConfigMap suggests in comments are ones the daemon accepts', () => {
    const text = readFileSync(join(K8S_DIR, 'base/kustomization.yaml'), 'utf8');
    const suggested = Object.fromEntries([...text.matchAll(/^\s*#\s+(SLUICE_[A-Z_]+)=(\S+)/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
    assert.deepEqual(Object.keys(suggested).sort(), ['SLUICE_BURST', 'SLUICE_HANDLERS', 'SLUICE_HTTP_ALLOW', 'SLUICE_PREFETCH']);
    const config = loadConfig(suggested); // throws on a bad example
    // The http example calls a Service by name: its ClusterIP must be inside the suggested range.
    const allowList = parseAllowList(config.httpAllow);
    assert.ok(allowList.allows(new URL('http://svc/hook')), 'SLUICE_HTTP_ALLOW allows the name svc');
    assert.ok(allowList.admits('10.96.0.10'), 'SLUICE_HTTP_ALLOW lets it resolve into the typical Service range');
  });

  it('every env variable name in the manifests is one the daemon (or the mysql image) documents', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    const design = join(ROOT, '..', 'shared', 'DESIGN.md');
    if (!existsSync(design)) return t.skip(`${design} is not there (it sits beside the repository in CI)`);
    const section = /## Configuration[^\n]*\n([\s\S]*?)(\n## |$)/.exec(readFileSync(design, 'utf8'))?.[1] ?? '';
    const documented = new Set(section.split('\n').flatMap((line) => /^\|([^|]+)\|/.exec(line)?.[1]?.match(/\b[A-Z][A-Z0-9_]+\b/g) ?? []));
    assert.ok(documented.has('DATABASE_URL') && documented.has('SLUICE_SHUTDOWN_GRACE_MS'), 'read the configuration table of DESIGN.md');
    const allowed = new Set([...documented, ...EXTRA_ENV]);
    let checked = 0;
    for (const [build, objects] of rendered) {
      for (const workload of objects) {
        for (const c of [...(podTemplate(workload)?.spec.containers ?? []), ...(podTemplate(workload)?.spec.initContainers ?? [])]) {
          const names = [
            ...(c.env ?? []).map((e) => e.name),
            ...(c.envFrom ?? []).flatMap((e) => {
              const source = e.configMapRef ? one(objects, 'ConfigMap', e.configMapRef.name) : one(objects, 'Secret', e.secretRef?.name);
              return Object.keys(source.kind === 'Secret' ? secretValues(source) : (source.data as Record<string, string>));
            }),
          ];
          const sluiceImage = c.image?.split(':')[0]?.endsWith('sluice') ?? false;
          const unknown = names.filter((n) => !(sluiceImage ? allowed.has(n) : MYSQL_IMAGE_ENV.includes(n)));
          assert.deepEqual(unknown, [], `${build} ${objectName(workload)} container ${c.name}: undocumented variables`);
          checked += names.length;
        }
      }
    }
    assert.ok(checked > 20, `checked ${checked} names`);
  });

  it('RBAC grants exactly get, create and update on the leader Lease, as the code calls them', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    // What the code calls: readNamespacedLease → get, createNamespacedLease → create, …
    const VERB: Record<string, string> = { read: 'get', create: 'create', replace: 'update', patch: 'patch', delete: 'delete', list: 'list', watch: 'watch', deleteCollection: 'deletecollection' };
    const code = sourceTexts().join('\n');
    const called = new Set([...code.matchAll(/\b(read|create|replace|patch|deleteCollection|delete|list|watch)Namespaced([A-Z]\w*)\(/g)].map((m) => `${m[2]}:${VERB[m[1] ?? '']}`));
    assert.deepEqual([...called].sort(), ['Lease:create', 'Lease:get', 'Lease:update'], 'the Kubernetes API calls in src/');
    assert.ok(code.includes(`'${LEASE_NAME}'`), `the code names its Lease ${LEASE_NAME}`);

    for (const [build, objects] of rendered) {
      assert.deepEqual([...find(objects, 'ClusterRole'), ...find(objects, 'ClusterRoleBinding')], [], `${build}: no cluster-wide RBAC`);
      const role = one(objects, 'Role');
      const rules = role.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>;
      for (const rule of rules) {
        assert.deepEqual(rule.apiGroups, ['coordination.k8s.io'], `${build}: apiGroups`);
        assert.deepEqual(rule.resources, ['leases'], `${build}: resources`);
        if (rule.resourceNames) assert.deepEqual(rule.resourceNames, [LEASE_NAME], `${build}: resourceNames`);
      }
      assert.deepEqual([...new Set(rules.flatMap((r) => r.verbs))].sort(), ['create', 'get', 'update'], `${build}: verbs`);
      const binding = one(objects, 'RoleBinding');
      const { deployment } = sluice(objects);
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata?.name });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: podTemplate(deployment)?.spec.serviceAccountName, namespace: NAMESPACE }]);
      one(objects, 'ServiceAccount', podTemplate(deployment)?.spec.serviceAccountName);
      assert.equal(podTemplate(deployment)?.spec.automountServiceAccountToken, true, `${build}: the Lease needs the token`);
    }
  });

  it('terminationGracePeriodSeconds outlasts SLUICE_SHUTDOWN_GRACE_MS', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    for (const [build, objects] of rendered) {
      const graceMs = loadConfig(sluiceSettings(objects)).shutdownGraceMs;
      const podSeconds = podTemplate(sluice(objects).deployment)?.spec.terminationGracePeriodSeconds;
      assert.ok(podSeconds !== undefined, `${build}: terminationGracePeriodSeconds is set`);
      assert.ok(podSeconds * 1000 > graceMs, `${build}: ${podSeconds} s must be longer than SLUICE_SHUTDOWN_GRACE_MS=${graceMs}`);
    }
  });

  it('every pod runs non-root, read-only, unprivileged, with seccomp and resources', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    let pods = 0;
    for (const [build, objects] of rendered) {
      for (const workload of objects) {
        const pod = podTemplate(workload);
        if (!pod) continue;
        pods++;
        for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
          const where = `${build} ${objectName(workload)} container ${c.name}`;
          const sc: SecurityContext = c.securityContext ?? {};
          const podSc: SecurityContext = pod.spec.securityContext ?? {};
          assert.equal(sc.runAsNonRoot ?? podSc.runAsNonRoot, true, `${where}: runAsNonRoot`);
          const uid = sc.runAsUser ?? podSc.runAsUser;
          assert.ok(Number.isInteger(uid) && (uid as number) > 0, `${where}: numeric non-root runAsUser`);
          assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
          assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
          assert.notEqual(sc.privileged, true, `${where}: privileged`);
          assert.ok(sc.capabilities?.drop?.includes('ALL'), `${where}: capabilities drop ALL`);
          assert.deepEqual(sc.capabilities?.add ?? [], [], `${where}: no capabilities added`);
          assert.equal((sc.seccompProfile ?? podSc.seccompProfile)?.type, 'RuntimeDefault', `${where}: seccomp`);
          for (const r of ['cpu', 'memory']) {
            assert.ok(c.resources?.requests?.[r] !== undefined, `${where}: ${r} request`);
            assert.ok(c.resources?.limits?.[r] !== undefined, `${where}: ${r} limit`);
          }
        }
      }
    }
    assert.ok(pods >= 5, `checked ${pods} pod templates`);
  });

  it('the Deployment: replicas, downward API, database secret, spread, selectors, image', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    for (const [build, objects] of rendered) {
      const { deployment, container } = sluice(objects);
      const spec = deployment.spec as { replicas?: number; selector: { matchLabels: Record<string, string> } };
      const pod = podTemplate(deployment);
      assert.ok(pod);
      const podLabels = pod.metadata?.labels;
      if (build === 'k8s/overlays/keda') assert.equal(spec.replicas, undefined, 'KEDA owns the replica count');
      else assert.equal(spec.replicas, 3, `${build}: replicas`);

      const env = new Map((container.env ?? []).map((e) => [e.name, e]));
      assert.equal(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
      assert.equal(env.get('POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace');
      const ref = env.get('DATABASE_URL')?.valueFrom?.secretKeyRef;
      assert.ok(ref?.name && ref.key, `${build}: DATABASE_URL comes from a Secret`);
      assert.equal(env.get('DATABASE_URL')?.value, undefined, `${build}: never a literal DATABASE_URL`);
      assert.ok(secretValues(one(objects, 'Secret', ref.name))[ref.key], `${build}: the Secret has key ${ref.key}`);

      for (const label of SELECTOR_LABELS) assert.ok(spec.selector.matchLabels[label], `selector has ${label}`);
      assert.ok(matches(spec.selector.matchLabels, podLabels), `${build}: the selector matches the pod labels`);
      const spread = pod.spec.topologySpreadConstraints ?? [];
      assert.ok(spread.some((s) => s.topologyKey === 'kubernetes.io/hostname'), `${build}: spread over nodes`);
      for (const s of spread) assert.ok(matches(s.labelSelector?.matchLabels, podLabels), `${build}: spread selects the sluice pods`);
      const pdb = one(objects, 'PodDisruptionBudget');
      const pdbSpec = pdb.spec as { minAvailable?: unknown; maxUnavailable?: unknown; selector: { matchLabels: Record<string, string> } };
      assert.ok(pdbSpec.maxUnavailable === 1 || pdbSpec.minAvailable === 1, `${build}: PDB allows one disruption`);
      assert.ok(matches(pdbSpec.selector.matchLabels, podLabels), `${build}: the PDB selects the sluice pods`);
      const policy = one(objects, 'NetworkPolicy').spec as { podSelector: { matchLabels: Record<string, string> } };
      assert.ok(matches(policy.podSelector.matchLabels, podLabels), `${build}: the NetworkPolicy selects the sluice pods`);

      assert.equal(container.image, `sluice:${packageVersion}`, `${build}: the image create_docker-image.sh tags`);
      assert.equal(container.imagePullPolicy, 'IfNotPresent');
      assert.equal(podLabels?.['app.kubernetes.io/version'], packageVersion);
      const tmp = pod.spec.volumes?.find((v) => v.emptyDir !== undefined);
      assert.ok(tmp, `${build}: an emptyDir volume`);
      assert.ok(
        (container as Container & { volumeMounts?: Array<{ name: string; mountPath: string }> }).volumeMounts?.some((m) => m.name === tmp.name && m.mountPath === '/tmp'),
        `${build}: /tmp is writable`,
      );
    }
  });

  it('egress is open but for the cloud metadata service: every pod, DNS, and every outside address', (t) => {
    const policies = sourceDocuments()
      .filter((d) => d.obj.kind === 'NetworkPolicy')
      .map((d) => ({ label: d.file, obj: d.obj }));
    const rendered = renderedOrSkip(t);
    for (const [build, objects] of rendered ?? []) policies.push({ label: build, obj: one(objects, 'NetworkPolicy') });
    assert.ok(policies.length > 0);
    for (const { label, obj } of policies) {
      const spec = obj.spec as { policyTypes?: string[]; egress?: EgressRule[] };
      assert.ok(spec.policyTypes?.includes('Egress'), `${label}: the policy governs egress`);
      const rules = spec.egress ?? [];
      for (const [address, port] of [['169.254.169.254', 80], ['169.254.169.254', 443], ['fd00:ec2::254', 80], ['fd00:ec2::254', 8080]] as const) {
        assert.ok(!egressAllowsExternal(rules, address, port), `${label}: the metadata service ${address}:${port} is not reachable`);
      }
      for (const [address, port, protocol] of [
        ['93.184.216.34', 443, 'TCP'],
        ['10.20.30.40', 3306, 'TCP'], // a database outside the cluster, on a private network
        ['169.254.169.123', 123, 'UDP'], // link-local neighbours of the metadata address stay open
        ['2606:4700:4700::1111', 443, 'TCP'],
        ['169.254.20.10', 53, 'UDP'], // a node-local DNS cache
        ['169.254.20.10', 53, 'TCP'],
      ] as const) {
        assert.ok(egressAllowsExternal(rules, address, port, protocol), `${label}: ${address}:${port}/${protocol} is reachable`);
      }
      const everyPod = rules.some(
        (r) =>
          (r.ports ?? []).length === 0 &&
          (r.to ?? []).some((p) => p.podSelector === undefined && p.ipBlock === undefined && JSON.stringify(p.namespaceSelector) === '{}'),
      );
      assert.ok(everyPod, `${label}: every pod of every namespace is reachable on any port (some CNIs never match pods by ipBlock)`);
    }
  });

  it('the base Secret holds a placeholder, never a usable database URL', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    for (const build of ['k8s', 'k8s/overlays/keda'] as const) {
      const values = secretValues(one(rendered.get(build) ?? [], 'Secret', 'database-url'));
      const url = new URL(values.DATABASE_URL ?? '');
      assert.equal(url.protocol, 'mysql:');
      assert.match(url.hostname, /\.invalid$/, `${build}: the placeholder host can never resolve`);
      if (build === 'k8s/overlays/keda') {
        // The KEDA DSN is the same credential in Go driver form.
        const dsn = /^([^:]+):([^@]*)@tcp\(([^:)]+):(\d+)\)\/(\w+)$/.exec(values.KEDA_MYSQL_DSN ?? '');
        assert.ok(dsn, 'KEDA_MYSQL_DSN is user:password@tcp(host:port)/db');
        assert.deepEqual(dsn.slice(1), [url.username, url.password, url.hostname, url.port, url.pathname.slice(1)]);
      }
    }
  });
});

// ---- overlays --------------------------------------------------------------------------------
describe('k8s/ overlays', () => {

  it('demo overlay: MySQL with a volume, sluice pointed at it, and the classic demo jobs', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    const objects = rendered.get('k8s/overlays/demo') ?? [];
    const mysql = one(objects, 'StatefulSet', 'mysql');
    const mysqlSpec = mysql.spec as { replicas: number; serviceName: string; volumeClaimTemplates?: Array<{ metadata: { name: string } }> };
    assert.equal(mysqlSpec.replicas, 1);
    assert.ok(mysqlSpec.volumeClaimTemplates?.some((v) => v.metadata.name === 'data'), 'MySQL keeps its data on a PVC');
    const mysqlPod = podTemplate(mysql);
    const mysqlContainer = mysqlPod?.spec.containers[0];
    assert.ok(mysqlPod && mysqlContainer);
    const service = one(objects, 'Service', mysqlSpec.serviceName);
    const serviceSpec = service.spec as { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string | number }> };
    assert.ok(matches(serviceSpec.selector, mysqlPod.metadata?.labels), 'the mysql Service selects the MySQL pod');
    const mysqlEnv = secretValues(one(objects, 'Secret', mysqlContainer.envFrom?.[0]?.secretRef?.name));

    const { container } = sluice(objects);
    const ref = container.env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef;
    const url = new URL(secretValues(one(objects, 'Secret', ref?.name))[ref?.key ?? ''] ?? '');
    assert.equal(url.hostname, service.metadata?.name, 'DATABASE_URL points at the mysql Service');
    assert.equal(Number(url.port), serviceSpec.ports[0]?.port);
    assert.equal(resolvePort(mysqlContainer, serviceSpec.ports[0]?.targetPort ?? ''), 3306);
    assert.deepEqual([url.username, url.password, url.pathname.slice(1)], [mysqlEnv.MYSQL_USER, mysqlEnv.MYSQL_PASSWORD, mysqlEnv.MYSQL_DATABASE]);

    const job = one(objects, 'Job');
    const jobPod = podTemplate(job);
    assert.match(jobPod?.spec.containers[0]?.image ?? '', /^mysql:/, 'the demo Job uses the mysql client');
    const sqlVolume = (jobPod?.spec.volumes as Array<{ configMap?: { name: string } }> | undefined)?.find((v) => v.configMap);
    const sql = (one(objects, 'ConfigMap', sqlVolume?.configMap?.name).data as Record<string, string>)['demo-jobs.sql'] ?? '';
    const rows = [...sql.matchAll(/\('sleep', '(\{[^']*\})', (\d+)\)/g)].map((m) => ({ payload: JSON.parse(m[1] ?? '') as { ms: number | null }, timeoutMs: Number(m[2]) }));
    assert.equal(rows.length, 30, 'thirty sleep jobs');
    rows.forEach((row, i) => {
      assert.deepEqual(row.payload, { ms: (i + 1) % 3 === 0 ? null : 1000 }, `job ${i + 1}: every third is stuck`);
      assert.equal(row.timeoutMs, 10_000);
    });
  });

  it('keda overlay: scales the Deployment on ready pending jobs, with a query the index serves', (t) => {
    const rendered = renderedOrSkip(t);
    if (!rendered) return;
    const objects = rendered.get('k8s/overlays/keda') ?? [];
    const scaled = one(objects, 'ScaledObject').spec as {
      scaleTargetRef: { kind?: string; name: string };
      minReplicaCount?: number;
      maxReplicaCount?: number;
      triggers: Array<{ type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }>;
    };
    assert.equal(scaled.scaleTargetRef.name, sluice(objects).deployment.metadata?.name);
    assert.equal(scaled.scaleTargetRef.kind ?? 'Deployment', 'Deployment');
    assert.ok((scaled.minReplicaCount ?? 0) >= 1, 'at least one replica runs the leader sweeps');
    assert.ok((scaled.maxReplicaCount ?? 0) > (scaled.minReplicaCount ?? 0));
    assert.equal(scaled.triggers.length, 1);
    const trigger = scaled.triggers[0];
    assert.ok(trigger);
    assert.equal(trigger.type, 'mysql');
    assert.ok(Number(trigger.metadata.queryValue) > 0, 'queryValue is a positive number');

    const auth = one(objects, 'TriggerAuthentication', trigger.authenticationRef?.name).spec as {
      secretTargetRef: Array<{ parameter: string; name: string; key: string }>;
    };
    assert.deepEqual(auth.secretTargetRef.map((r) => r.parameter), ['connectionString']);
    for (const r of auth.secretTargetRef) assert.ok(secretValues(one(objects, 'Secret', r.name))[r.key], `Secret ${r.name} has key ${r.key}`);

    const query = trigger.metadata.query ?? '';
    // Capped: a count past queryValue × maxReplicaCount cannot add a replica.
    const cap = /LIMIT (\d+)\) t$/i.exec(query)?.[1];
    assert.ok(cap, `the count stops at a cap (${query})`);
    assert.ok(Number(cap) >= Number(trigger.metadata.queryValue) * (scaled.maxReplicaCount ?? 1), 'the cap can still ask for every replica');
    assert.match(query, /^SELECT COUNT\(\*\) FROM \(SELECT 1 FROM job_queues q JOIN jobs j ON /i, 'one index dive per queue');
    assert.match(query, /q\.paused\s*=\s*0/, 'paused queues are not work');
    assert.match(query, /j\.status\s*=\s*'pending'/);
    assert.match(query, /j\.claim_lane\s*=\s*0/, 'only jobs that could start now');
    const { columns, claimIndex } = jobsSchema();
    const identifiers = [...query.matchAll(/\bj\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => (m[1] ?? '').toLowerCase());
    assert.ok(identifiers.length >= 2, `the query filters on columns (${identifiers.join(', ')})`);
    for (const id of identifiers) {
      assert.ok(columns.has(id), `${id} is a column of jobs (${[...columns].join(', ')})`);
      assert.ok(claimIndex.includes(id), `${id} is in the index jobs_claim (${claimIndex.join(', ')}), so the count reads the index only`);
    }
    assert.equal(claimIndex[0], 'status', 'the index leads with status, the equality the query tests');
  });
});

// ---- the image ---------------------------------------------------------------------------------
describe('the image agrees with the manifests', () => {

  it('the Dockerfile runs node dist/main.js as the non-root user the Deployment expects', (t) => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(dockerfile, /^ARG BASE_IMAGE=node:\d+[-\w.]*-slim$/m, 'a slim Node.js base by default');
    assert.equal(/^ENTRYPOINT (.*)$/m.exec(final)?.[1], '["node", "dist/main.js"]', 'exec form, no shell between');
    assert.match(final, /^COPY migrations \.\/migrations$/m, 'migrations/ sits beside dist/');
    assert.match(final, /^EXPOSE 9090$/m);
    assert.match(dockerfile, /npm ci --omit=dev/, 'production dependencies only');
    for (const arg of ['VERSION', 'REVISION']) assert.match(final, new RegExp(`org\\.opencontainers\\.image\\.${arg.toLowerCase()}="\\$\\{${arg}\\}"`));
    const user = /^USER (\d+):(\d+)$/m.exec(final);
    assert.ok(user, 'USER is numeric uid:gid');
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
    for (const needed of ['src/', 'migrations/', 'package-lock.json']) assert.ok(ignore.includes(`!${needed}`), `.dockerignore lets ${needed} through`);

    if (!kubectl) return t.diagnostic(NO_KUBECTL_FILES_ONLY);
    for (const build of BUILDS) {
      const { deployment, container } = sluice(render(build));
      const sc = { ...podTemplate(deployment)?.spec.securityContext, ...container.securityContext };
      assert.deepEqual([sc.runAsUser, sc.runAsGroup], [Number(user[1]), Number(user[2])], `${build}: runAsUser/runAsGroup match the image's USER`);
    }
  });
});
