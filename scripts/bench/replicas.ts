/** Daemon processes (dist/main.js) started and stopped by the scenarios. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DB, NODE_ARGS, passThrough } from './config.js';
import { daemonUrl, q, resetDatabase } from './db.js';
import { until } from './harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Replica {
  proc: ChildProcess;
  exited: Promise<unknown>;
  peakRssMb(): number;
}

/** Replicas still running: stopped on the way out, even when a scenario fails. */
export const running = new Set<ChildProcess>();

export function startReplica(id: string, extra: Record<string, string>): Replica {
  const proc = spawn(process.execPath, [...NODE_ARGS, 'dist/main.js'], {
    cwd: ROOT,
    // SLUICE_* in the bench's own environment pass through: they override the scenario's.
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: daemonUrl, SLUICE_WORKER_ID: id, SLUICE_HTTP_PORT: '0', SLUICE_DASHBOARD_PORT: '0', LOG_LEVEL: 'warn', ...extra, ...passThrough() },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  running.add(proc);
  const exited = new Promise((r) => proc.on('exit', r));
  void exited.then(() => running.delete(proc));
  return {
    proc,
    exited,
    peakRssMb: () => {
      try {
        const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1];
        return kb ? Math.round(Number(kb) / 1024) : NaN;
      } catch {
        return NaN;
      }
    },
  };
}

export async function startReplicas(count: number, extra: Record<string, string>): Promise<Replica[]> {
  const replicas = Array.from({ length: count }, (_, i) => startReplica(`bench-${i + 1}`, extra));
  // Registered: each replica's row (a bench scenario may keep rows of its own there).
  const ids = Array.from({ length: count }, (_, i) => `bench-${i + 1}`);
  await until(async () => Number((await q(`SELECT COUNT(*) n FROM ${DB}.job_workers WHERE id IN (?)`, [ids]).catch(() => [{ n: 0 }]))[0]?.n) === count, 60_000);
  return replicas;
}

export async function stopReplicas(replicas: Replica[]): Promise<number> {
  const peak = Math.max(...replicas.map((r) => r.peakRssMb()));
  for (const r of replicas) r.proc.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.exited));
  return peak;
}

/** A fresh database with the schema applied (a replica runs the migrations). */
export async function migrated(): Promise<void> {
  await resetDatabase();
  await stopReplicas(await startReplicas(1, {}));
}
