// The only module that loads @kubernetes/client-node (~80 MB resident): createLeader()
// imports it on demand, when the Lease backend is chosen, so a daemon outside Kubernetes
// never pays for it.
import {
  ApiException,
  CoordinationV1Api,
  KubeConfig,
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type V1Lease,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import { coerceError } from '../errors.js';
import type { LeaseRecord, LeaseStore, LeaseWrite, StoredLease } from './lease-store.js';

export interface KubernetesLeaseStoreOptions {
  /** API server and credentials. Default: the pod's own (`loadFromCluster`). */
  kubeConfig?: KubeConfig;
  /**
   * Prepended to the service-account directory by `loadFromCluster(pathPrefix)` when no
   * kubeConfig is given; tests point it at a temp dir. Default ''.
   */
  serviceAccountPathPrefix?: string;
  /** Namespace of the Lease. Default: the kubeconfig's (in a pod, the service account's), else `default`. */
  namespace?: string;
  /** Name of the Lease object. Default `sluice-leader`. */
  leaseName?: string;
}

/**
 * A coordination.k8s.io/v1 Lease on the API server, through @kubernetes/client-node:
 * GET (404 → none), POST (409 → conflict) and PUT with metadata.resourceVersion (409 →
 * conflict). Errors are rethrown as short messages: ApiException's own carries whole
 * bodies and headers.
 */
export class KubernetesLeaseStore implements LeaseStore {
  readonly name: string;
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  private readonly leaseName: string;
  /** The objects as last read or written: a replace sends their other fields back unchanged. */
  private readonly objects = new WeakMap<StoredLease, V1Lease>();

  constructor(opts: KubernetesLeaseStoreOptions = {}) {
    let kubeConfig = opts.kubeConfig;
    if (kubeConfig === undefined) {
      kubeConfig = new KubeConfig();
      // Reads KUBERNETES_SERVICE_HOST/PORT and the token, CA and namespace files under the prefix.
      kubeConfig.loadFromCluster(opts.serviceAccountPathPrefix ?? '');
    }
    this.namespace =
      opts.namespace || kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace?.trim() || 'default';
    this.leaseName = opts.leaseName ?? 'sluice-leader';
    this.name = `${this.namespace}/${this.leaseName}`;
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  async get(signal: AbortSignal): Promise<StoredLease | undefined> {
    try {
      return this.stored(
        await this.api.readNamespacedLease({ name: this.leaseName, namespace: this.namespace }, callOptions(signal)),
      );
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw readable(err);
    }
  }

  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseWrite> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.leaseName, namespace: this.namespace },
      spec: specOf(record),
    };
    return this.write(() => this.api.createNamespacedLease({ namespace: this.namespace, body }, callOptions(signal)));
  }

  replace(current: StoredLease, record: LeaseRecord, signal: AbortSignal): Promise<LeaseWrite> {
    const base = this.objects.get(current);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: writableMetadata(base?.metadata ?? { name: this.leaseName, namespace: this.namespace, resourceVersion: current.version }),
      spec: { ...base?.spec, ...specOf(record) },
    };
    return this.write(() =>
      this.api.replaceNamespacedLease({ name: this.leaseName, namespace: this.namespace, body }, callOptions(signal)),
    );
  }

  private async write(call: () => Promise<V1Lease>): Promise<LeaseWrite> {
    try {
      return { ok: true, lease: this.stored(await call()) };
    } catch (err) {
      if (statusOf(err) === 409) return { ok: false, conflict: true };
      throw readable(err);
    }
  }

  private stored(lease: V1Lease): StoredLease {
    const spec = lease.spec ?? {};
    const stored: StoredLease = {
      record: {
        holderIdentity: spec.holderIdentity ?? '',
        leaseDurationSeconds: spec.leaseDurationSeconds,
        acquireTime: msOf(spec.acquireTime),
        renewTime: msOf(spec.renewTime),
        leaseTransitions: spec.leaseTransitions ?? 0,
      },
      // Without a resourceVersion (never from a real server) any change of the spec is a new version.
      version: lease.metadata?.resourceVersion ?? JSON.stringify(spec),
    };
    this.objects.set(stored, lease);
    return stored;
  }
}

function specOf(record: LeaseRecord): V1Lease['spec'] {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    // MicroTime: the API server wants six fractional digits.
    acquireTime: record.acquireTime === undefined ? undefined : new V1MicroTime(record.acquireTime),
    renewTime: record.renewTime === undefined ? undefined : new V1MicroTime(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}

/** client-node hands MicroTime fields over as the server's strings, though typed as dates. */
function msOf(time: Date | string | undefined): number | undefined {
  if (time === undefined) return undefined;
  const ms = new Date(time).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

/** Per-call options that attach an AbortSignal to the request (node-fetch honours it). */
function callOptions(signal: AbortSignal): ConfigurationOptions {
  const withSignal: ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [withSignal], middlewareMergeStrategy: 'append' };
}

/** The metadata to send back on replace: managedFields left out so the server keeps its own. */
function writableMetadata(meta: V1ObjectMeta): V1ObjectMeta {
  const writable: V1ObjectMeta = { ...meta };
  delete writable.managedFields;
  return writable;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** A short, secret-free error: `HTTP 500: <the Status message>`; other errors as they are. */
function readable(err: unknown): Error {
  if (!(err instanceof ApiException)) return coerceError(err);
  const body: unknown = err.body;
  const message =
    typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
      ? (body as { message: string }).message
      : typeof body === 'string'
        ? body.slice(0, 200)
        : '';
  return new Error(`HTTP ${err.code}${message ? `: ${message}` : ''}`);
}
