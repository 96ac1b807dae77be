import { existsSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubernetesLeaseLeader } from './kubernetes-lease-leader.js';
import type { Leader } from './leader.js';
import { silentLogger } from './leadership.js';
import { MysqlLockLeader, type MysqlLockLeaderOptions } from './mysql-lock-leader.js';

/** Where Kubernetes mounts a pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface CreateLeaderOptions {
  /** This replica's worker id (the pod name in Kubernetes). */
  identity: string;
  /** `auto` (default): a Kubernetes Lease when running in a cluster, else a MySQL lock. */
  backend?: 'auto' | 'kubernetes' | 'mysql';
  /** The MySQL lock's dedicated connection: options, `mysql://` URL or factory. */
  mysql: MysqlLockLeaderOptions['connection'];
  /** GET_LOCK name. Default `sluice-leader:<database>`. */
  lockName?: string;
  /** Namespace of the Lease. Default: the service account's namespace file, else `default`. */
  namespace?: string;
  /** Name of the Lease. Default `sluice-leader`. */
  leaseName?: string;
  /** Lease validity without renewal, ms (Kubernetes only). Default 15000. */
  leaseDurationMs?: number;
  /** Time between rounds, ms. Default 2000 for the Lease, 5000 for the MySQL lock. */
  renewIntervalMs?: number;
  /** MySQL lock only: how often the leader re-checks its lock. Default: renewIntervalMs. */
  leaderCheckIntervalMs?: number;
  /**
   * Prepended to `/var/run/secrets/kubernetes.io/serviceaccount` both for the in-cluster
   * check and by `KubeConfig.loadFromCluster(pathPrefix)`; tests point it at a temp dir
   * holding `var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`. Default ''.
   */
  serviceAccountPathPrefix?: string;
  /** Used instead of `loadFromCluster()` when given (and implies Kubernetes under `auto`). */
  kubeConfig?: KubeConfig;
  clock?: () => number;
  logger?: Logger;
}

/**
 * True inside a pod: the API server's address is in the environment and the
 * service-account token is mounted (a pod with automountServiceAccountToken off is not).
 */
export function inKubernetesCluster(serviceAccountPathPrefix = ''): boolean {
  return (
    Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync(`${serviceAccountPathPrefix}${SERVICE_ACCOUNT_DIR}/token`)
  );
}

/**
 * The leader for where we run: a Kubernetes Lease in a cluster, a MySQL GET_LOCK elsewhere.
 * Async because the Lease's client library (@kubernetes/client-node, ~80 MB resident) is
 * imported only when the Lease is chosen.
 */
export async function createLeader(opts: CreateLeaderOptions): Promise<Leader> {
  const log = opts.logger ?? silentLogger();
  const prefix = opts.serviceAccountPathPrefix ?? '';
  const backend =
    opts.backend === undefined || opts.backend === 'auto'
      ? opts.kubeConfig !== undefined || inKubernetesCluster(prefix)
        ? 'kubernetes'
        : 'mysql'
      : opts.backend;

  if (backend === 'mysql') {
    log.info({ backend }, 'leader election on a MySQL lock');
    return new MysqlLockLeader({
      connection: opts.mysql,
      lockName: opts.lockName,
      renewIntervalMs: opts.renewIntervalMs,
      leaderCheckIntervalMs: opts.leaderCheckIntervalMs,
      logger: opts.logger,
    });
  }

  const { KubernetesLeaseStore } = await import('./kubernetes-lease-store.js');
  const store = new KubernetesLeaseStore({
    kubeConfig: opts.kubeConfig,
    serviceAccountPathPrefix: prefix,
    namespace: opts.namespace,
    leaseName: opts.leaseName,
  });
  log.info({ backend, lease: store.name }, 'leader election on a Kubernetes Lease');
  return new KubernetesLeaseLeader({
    store,
    identity: opts.identity,
    leaseDurationMs: opts.leaseDurationMs,
    renewIntervalMs: opts.renewIntervalMs,
    clock: opts.clock,
    logger: opts.logger,
  });
}
