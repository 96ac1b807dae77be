import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type mysql from 'mysql2/promise';
import { loadConfig } from '../../src/config.js';
import { Daemon, type DaemonOptions } from '../../src/daemon.js';
import { createLogger } from '../../src/observability/logger.js';
import { waitFor } from './database.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURE_HANDLERS = fileURLToPath(new URL('../fixtures/handlers.mjs', import.meta.url));

/** Fast settings for tests; a test overrides what it checks. */
export function testEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    SLUICE_POLL_MS: '50',
    SLUICE_HEARTBEAT_MS: '200',
    SLUICE_DEAD_AFTER_MS: '2000',
    SLUICE_SHUTDOWN_GRACE_MS: '2000',
    SLUICE_HTTP_PORT: '0',
    // Off unless a test asks: replicas of one test would all want 9091.
    SLUICE_DASHBOARD_PORT: '0',
    SLUICE_RATE: '1000',
    SLUICE_HANDLERS: FIXTURE_HANDLERS,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    ...extra,
  };
}

/** Closes the fixture handlers' pool (in-process daemons share this process with it). */
export async function closeFixtures(): Promise<void> {
  const mod = (await import(FIXTURE_HANDLERS)) as { closeFixturePool(): Promise<void> };
  await mod.closeFixturePool();
}

/** A daemon in this process (for tests that only need the pipeline). */
export async function startDaemon(env: Record<string, string>, options: DaemonOptions = {}): Promise<Daemon> {
  // The fixture handlers record their effects through DATABASE_URL, as in a child process.
  process.env.DATABASE_URL = env.DATABASE_URL;
  const config = loadConfig(env);
  const daemon = new Daemon(config, { logger: createLogger(env.LOG_LEVEL ?? 'warn', { worker: config.workerId }), ...options });
  await daemon.start();
  return daemon;
}

/** sluice_db_statements_total for the statement `name`, read from Prometheus text. */
function statementsIn(metrics: string, name: string): number {
  return Number(metrics.match(new RegExp(`sluice_db_statements_total\\{statement="${name}"} (\\d+)`))?.[1] ?? 0);
}

/** How many times an in-process daemon has sent the statement `name` (sluice_db_statements_total). */
export async function statementCount(daemon: Daemon, name: string): Promise<number> {
  return statementsIn(await daemon.metrics.registry.getSingleMetricAsString('sluice_db_statements_total'), name);
}

/** The same for a daemon process, from its /metrics on 127.0.0.1:`port` (SLUICE_HTTP_PORT). */
export async function scrapedStatementCount(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /metrics on port ${port}: HTTP ${res.status}`);
  return statementsIn(await res.text(), name);
}

/** Waits until a worker has registered (migrations applied, pipeline about to start). */
export async function waitForWorker(pool: mysql.Pool, id: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT id FROM job_workers WHERE id = ?', [id]);
      return rows.length > 0;
    },
    { timeoutMs, message: `worker ${id} never registered` },
  );
}

export interface DaemonProcess {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Waits until the output contains `text`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
}

/** `node dist/main.js` as a real child process, as the image runs it. */
export function spawnDaemon(env: Record<string, string>, args: string[] = []): DaemonProcess {
  const proc = spawn(process.execPath, ['dist/main.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    proc,
    output: () => out,
    exited,
    waitForOutput: (text, timeoutMs = 15_000) =>
      waitFor(() => Promise.resolve(out.includes(text)), { timeoutMs, message: `daemon output never said "${text}". Output:\n${out}` }).then(() => undefined),
  };
}

/** Real replicas (`spawnDaemon`), one per name as SLUICE_WORKER_ID, each registered before this resolves. */
export async function spawnReplicas(
  databaseUrl: string,
  pool: mysql.Pool,
  names: readonly string[],
  extra: Record<string, string> = {},
): Promise<DaemonProcess[]> {
  const replicas = names.map((name) => spawnDaemon(testEnv(databaseUrl, { SLUICE_WORKER_ID: name, ...extra })));
  for (const name of names) await waitForWorker(pool, name);
  return replicas;
}

/** SIGTERM to every replica still running; resolves once all have exited. */
export async function stopReplicas(replicas: readonly DaemonProcess[]): Promise<void> {
  for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.exited));
}
