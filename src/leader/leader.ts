/**
 * Leadership for the sweeps that must run once per cluster (dead replicas, dead jobs,
 * pruning). One implementation per environment: a Kubernetes Lease in a cluster, a MySQL
 * GET_LOCK elsewhere. Both keep trying in the background; `isLeader()` is read before
 * every sweep, so losing leadership stops the sweeps at their next tick.
 */
export interface Leader {
  /** Begins campaigning; resolves once the first attempt has been made. Safe to call twice. */
  start(): Promise<void>;
  /** True while this process holds leadership and its last renewal is fresh. */
  isLeader(): boolean;
  /** Stops campaigning and releases leadership if held. Safe to call twice. */
  stop(): Promise<void>;
  /** Called with the new state whenever leadership is gained or lost. */
  onChange(listener: (leader: boolean) => void): void;
}
