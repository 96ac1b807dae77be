/**
 * job_workers: one row per live replica, its heartbeat, and the leader's removal of the
 * rows of replicas that stopped beating. (The idle replica's combined heartbeat and probe
 * is workersHeartbeatIfQuiet in probe.ts.)
 */
import type { Executor } from '../database.js';
import { text } from './rows.js';

/** Registers this process, or refreshes its row. Params: worker row. Returns true if the row was missing. */
export async function workersUpsert(
  db: Executor,
  w: { id: string; host: string; pid: number; version: string; queues: string },
): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>(
    'workersUpsert',
    `INSERT INTO job_workers (id, host, pid, version, queues, started_at, heartbeat_at)
     VALUES (?, ?, ?, ?, ?, NOW(3), NOW(3))
     ON DUPLICATE KEY UPDATE heartbeat_at = NOW(3), host = VALUES(host), pid = VALUES(pid),
       version = VALUES(version), queues = VALUES(queues)`,
    [w.id, w.host, w.pid, w.version, w.queues],
  );
  return r.affectedRows === 1;
}

/** Heartbeat: one statement per replica per interval. Params: worker. Returns false if the row is gone. */
export async function workersHeartbeat(db: Executor, worker: string): Promise<boolean> {
  const r = await db.run<{ affectedRows: number }>('workersHeartbeat', 'UPDATE job_workers SET heartbeat_at = NOW(3) WHERE id = ?', [worker]);
  return r.affectedRows > 0;
}

/** Removes this process's row on a clean exit. Params: worker. */
export async function workersDelete(db: Executor, worker: string): Promise<void> {
  await db.run('workersDelete', 'DELETE FROM job_workers WHERE id = ?', [worker]);
}

export interface SelectDeadParams {
  deadAfterMs: number;
  /** Start past this id (the previous batch's last); '' for the first batch. */
  afterId: string;
  limit: number;
}

/**
 * Workers whose heartbeat is older than dead-after, in id order past `afterId`: the
 * caller goes on from a batch's last id while batches come back full.
 * Params: dead-after ms, after id, limit.
 */
export async function workersSelectDead(db: Executor, { deadAfterMs, afterId, limit }: SelectDeadParams): Promise<string[]> {
  const rows = await db.run(
    'workersSelectDead',
    'SELECT id FROM job_workers WHERE heartbeat_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND AND id > ? ORDER BY id LIMIT ?',
    [deadAfterMs, afterId, limit],
  );
  return rows.map((r) => text(r.id));
}

/** Deletes dead workers' rows, fenced on the heartbeat still being old. Params: ids, dead-after ms. */
export async function workersDeleteDead(db: Executor, ids: readonly string[], deadAfterMs: number): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await db.run<{ affectedRows: number }>(
    'workersDeleteDead',
    'DELETE FROM job_workers WHERE id IN (?) AND heartbeat_at < NOW(3) - INTERVAL ? * 1000 MICROSECOND',
    [ids, deadAfterMs],
  );
  return r.affectedRows;
}
