// Offline checks of the Kubernetes manifests under k8s/: reading, rendering with
// `kubectl kustomize`, schema validation with kubernetes-models, and a strict check that
// rejects fields the Kubernetes (and KEDA) API does not define.
//
// Why a strict check of its own: the models' validate() (JSON Schema compiled by ajv)
// accepts unknown properties, and the API server prunes or ignores them, so a typo like
// `livenessprobe:` would deploy a pod without the probe and nobody would notice. The
// models also ship TypeScript declarations of every API type; a TypeScript object literal
// annotated with such a type gets excess-property checking at every depth. So each
// manifest is written out as `const o: IDeployment = {…}` and type-checked in memory.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const K8S_DIR = join(ROOT, 'k8s');

/** A Kubernetes object as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export function objectName(obj: K8sObject): string {
  return `${obj.kind}/${obj.metadata?.name ?? '?'}`;
}

export function isK8sObject(doc: unknown): doc is K8sObject {
  return typeof doc === 'object' && doc !== null && typeof (doc as K8sObject).apiVersion === 'string' && typeof (doc as K8sObject).kind === 'string';
}

/** Every *.yaml / *.yml file under `dir`, sorted, as absolute paths. */
export function yamlFiles(dir = K8S_DIR): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

/** Parses every document of a YAML text; throws listing each syntax error. */
export function parseYamlDocuments(text: string, label: string): unknown[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error(`${label}: not a YAML stream`);
  const errors = docs.flatMap((d) => d.errors.map((e) => `${label}: ${e.message}`));
  if (errors.length > 0) throw new Error(errors.join('\n'));
  return docs.map((d) => d.toJS() as unknown).filter((d) => d !== null && d !== undefined);
}

export interface SourceDocument {
  /** Path relative to the repository root. */
  file: string;
  obj: K8sObject;
  /** A strategic-merge patch: a partial object, checked for unknown fields only. */
  patch: boolean;
}

const KUSTOMIZATION = /(^|\/)kustomization\.ya?ml$/;

/**
 * The Kubernetes objects written in k8s/ as files: resources and patches, not the
 * kustomization files themselves.
 */
export function sourceDocuments(): SourceDocument[] {
  const patchFiles = new Set<string>();
  const files = yamlFiles();
  for (const file of files.filter((f) => KUSTOMIZATION.test(f))) {
    const [k] = parseYamlDocuments(readFileSync(file, 'utf8'), file) as Array<{ patches?: Array<{ path?: string }> }>;
    for (const p of k?.patches ?? []) if (p.path) patchFiles.add(resolve(dirname(file), p.path));
  }
  return files
    .filter((f) => !KUSTOMIZATION.test(f))
    .flatMap((file) =>
      parseYamlDocuments(readFileSync(file, 'utf8'), file)
        .filter(isK8sObject)
        .map((obj) => ({ file: relative(ROOT, file), obj, patch: patchFiles.has(file) })),
    );
}

/** kubectl's path, or undefined when it is not installed. */
export function findKubectl(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/bin', '/usr/bin']) {
    const candidate = join(dir, 'kubectl');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `kubectl kustomize <dir>` (dir relative to the repository root), parsed. */
export function kustomize(kubectl: string, dir: string): K8sObject[] {
  const text = execFileSync(kubectl, ['kustomize', join(ROOT, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  const docs = parseYamlDocuments(text, `kubectl kustomize ${dir}`);
  const bad = docs.filter((d) => !isK8sObject(d));
  if (bad.length > 0) throw new Error(`kubectl kustomize ${dir} produced ${bad.length} documents without apiVersion/kind`);
  return docs as K8sObject[];
}

// ---- models ----------------------------------------------------------------------------

interface ModelLocation {
  /** Module that default-exports nothing but exports the class and its `I<Kind>` type. */
  module: string;
  kind: string;
}

/** Where kubernetes-models (or @kubernetes-models/keda) declares this apiVersion/kind. */
export function modelLocation(apiVersion: string, kind: string): ModelLocation {
  if (!/^[A-Za-z]+$/.test(kind) || !/^[a-z0-9.]+(\/v[0-9a-z]+)?$/.test(apiVersion)) {
    throw new Error(`not a Kubernetes apiVersion/kind: ${apiVersion} ${kind}`);
  }
  const pkg = apiVersion.startsWith('keda.sh/') ? '@kubernetes-models/keda' : 'kubernetes-models';
  return { module: `${pkg}/${apiVersion}/${kind}`, kind };
}

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

const require = createRequire(import.meta.url);

/** The model class for an object, or undefined when the models do not know its kind. */
export function modelClass(obj: K8sObject): ModelClass | undefined {
  const loc = modelLocation(obj.apiVersion, obj.kind);
  let mod: Record<string, unknown>;
  try {
    mod = require(loc.module) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  return typeof mod[loc.kind] === 'function' ? (mod[loc.kind] as ModelClass) : undefined;
}

/** Schema errors of one object (empty when valid), from the model's validate(). */
export function schemaErrors(obj: K8sObject): string[] {
  const Model = modelClass(obj);
  if (!Model) return [`${objectName(obj)}: no model for ${obj.apiVersion} ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [`${objectName(obj)}: ${err instanceof Error ? err.message : String(err)}`];
  }
}

// ---- strict check: unknown fields --------------------------------------------------------

export interface StrictInput {
  label: string;
  obj: K8sObject;
}

/**
 * Every field, at any depth, that the object's API type does not declare, as
 * `label: path.to.field`. Types, required fields and values are validate()'s business;
 * this only answers "would the API server drop or reject this field?". Patches can be
 * checked too: a missing field is never reported.
 */
export function unknownFields(inputs: readonly StrictInput[]): string[] {
  // One type alias per object, resolved by the TypeScript checker from the models'
  // declarations; then each object's JSON is walked along its type.
  const virtual = join(ROOT, 'test', '__k8s_strict_check__.ts');
  const source = inputs
    .map(({ obj }, i) => {
      const loc = modelLocation(obj.apiVersion, obj.kind);
      return `import type { I${loc.kind} as T${i} } from ${JSON.stringify(loc.module)};\nexport type A${i} = T${i};`;
    })
    .join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options, true);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (f) => resolve(f) === virtual || fileExists(f);
  host.readFile = (f) => (resolve(f) === virtual ? source : readFile(f));
  host.getSourceFile = (f, lang, onError, create) =>
    resolve(f) === virtual ? ts.createSourceFile(f, source, lang, true) : getSourceFile(f, lang, onError, create);
  const program = ts.createProgram([virtual], options, host);
  const file = program.getSourceFile(virtual);
  if (!file) throw new Error('strict check: the generated source was not loaded');
  const broken = program.getSemanticDiagnostics(file).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
  if (broken.length > 0) throw new Error(`strict check: cannot load the model types: ${broken.join('; ')}`);

  const checker = program.getTypeChecker();
  const aliases = file.statements.filter(ts.isTypeAliasDeclaration);
  return inputs.flatMap(({ label, obj }, i) => {
    const alias = aliases.find((a) => a.name.text === `A${i}`);
    if (!alias) throw new Error(`strict check: no type for ${label}`);
    const type = checker.getTypeAtLocation(alias.name);
    if (type.flags & ts.TypeFlags.Any) return [`${label}: no TypeScript declaration for ${obj.apiVersion} ${obj.kind}`];
    return undeclared(checker, obj, type, '').map((path) => `${label}: ${path}`);
  });
}

/** Paths under `value` that `type` does not declare. */
function undeclared(checker: ts.TypeChecker, value: unknown, declared: ts.Type, path: string): string[] {
  if (value === null || typeof value !== 'object') return [];
  const type = checker.getNonNullableType(declared);
  const members = type.isUnion() ? type.types : [type];
  if (members.some((t) => t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown))) return [];
  if (Array.isArray(value)) {
    const array = members.find((t) => checker.isArrayType(t));
    if (!array) return [`${path} (a list where the API expects ${checker.typeToString(type)})`];
    const element = checker.getTypeArguments(array as ts.TypeReference)[0];
    return element ? value.flatMap((v, i) => undeclared(checker, v, element, `${path}[${i}]`)) : [];
  }
  const objects = members.filter((t) => t.flags & ts.TypeFlags.Object && !checker.isArrayType(t));
  if (objects.length === 0) return [`${path} (an object where the API expects ${checker.typeToString(type)})`];
  return Object.entries(value).flatMap(([key, v]) => {
    const at = path === '' ? key : `${path}.${key}`;
    for (const t of objects) {
      const prop = checker.getPropertyOfType(t, key);
      if (prop) return undeclared(checker, v, checker.getTypeOfSymbol(prop), at);
      const index = checker.getIndexInfosOfType(t).find((info) => info.keyType.flags & ts.TypeFlags.String);
      if (index) return undeclared(checker, v, index.type, at);
    }
    return [at];
  });
}

// ---- small accessors for pod templates --------------------------------------------------

export interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: Record<string, { name?: string; key?: string; fieldPath?: string }> }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  securityContext?: SecurityContext;
}
export interface Probe {
  httpGet?: { path?: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
}
export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
  serviceAccountName?: string;
  topologySpreadConstraints?: Array<{ topologyKey: string; labelSelector?: { matchLabels?: Record<string, string> } }>;
  volumes?: Array<{ name: string; emptyDir?: unknown }>;
}
export interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: PodSpec;
}

/** The pod template of a workload (Deployment, StatefulSet, Job…), if it has one. */
export function podTemplate(obj: K8sObject): PodTemplate | undefined {
  const spec = obj.spec as { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } } | undefined;
  return spec?.template ?? spec?.jobTemplate?.spec?.template;
}

/** The containerPort a probe or Service targets (named or numbered). */
export function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}
