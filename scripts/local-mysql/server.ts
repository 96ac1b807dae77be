// A private, throwaway MariaDB/MySQL server for the demo, the scripts and the tests.
//
// LocalMysqlServer runs the installed `mariadbd` (or `mysqld`) in a fresh temporary
// directory, on its own port on 127.0.0.1, as root with an empty password. It never
// touches the machine's own server or its configuration (`--no-defaults`). Outage tests
// use kill() and restart(): the server goes away and comes back on the same address with
// the same data. Which server to use at all is database-url.ts's choice.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, realpathSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { retry } from '../../src/retry.js';
import { type Binaries, findBinaries, initialiseDataDir, isRoot, tail } from './binaries.js';

export interface LocalMysqlOptions {
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Database created once the server is up (default `sluice`). */
  database?: string;
  /** Data directory to use (initialised when empty, kept by destroy()); default: in the temp dir. */
  dataDir?: string;
  /** How long to wait for the server to accept connections (default 60 s). */
  startTimeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (free now: someone may take it before it is used). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not find a free TCP port'))));
    });
  });
}

/** Connects to 127.0.0.1:`port` as root with an empty password. */
export function connectAsRoot(port: number, timeoutMs = 2000): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', connectTimeout: timeoutMs });
}

/** Refuses a database name that is not plain letters, digits and _ (it is spliced into SQL). */
export function assertDatabaseName(name: string): void {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(name)) {
    throw new Error(`invalid database name ${JSON.stringify(name)}: use letters, digits and _ only`);
  }
}

/** CREATE DATABASE IF NOT EXISTS in the tables' character set and collation. */
export async function createDatabase(conn: mysql.Connection, name: string): Promise<void> {
  assertDatabaseName(name);
  await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
}

// Servers still alive when the process exits are killed and their temp dirs removed,
// so a test that forgot destroy() (or failed before it) leaves nothing behind.
const live = new Set<LocalMysqlServer>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) server.killSync();
  });
}

/** The server cannot start: retrying the same way will not help. */
class StartFailed extends Error {}
/** Someone else holds the port: another port may do. */
class PortInUseError extends StartFailed {}

export class LocalMysqlServer {
  /** The temporary directory holding the socket, pid file and (by default) the data. */
  readonly tempDir: string;
  readonly dataDir: string;
  readonly database: string;
  private currentPort: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private destroyed = false;

  private constructor(
    private readonly bin: Binaries,
    tempDir: string,
    dataDir: string,
    port: number,
    database: string,
    private readonly startTimeoutMs: number,
  ) {
    this.tempDir = tempDir;
    this.dataDir = dataDir;
    this.currentPort = port;
    this.database = database;
  }

  get port(): number {
    return this.currentPort;
  }

  get url(): string {
    return `mysql://root@127.0.0.1:${this.currentPort}/${this.database}`;
  }

  /** True while the server process is alive. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(opts: LocalMysqlOptions = {}): Promise<LocalMysqlServer> {
    const database = opts.database ?? 'sluice';
    assertDatabaseName(database);
    const bin = await findBinaries();
    const tempDir = await mkdtemp(join(tmpdir(), 'sluice-mysql-'));
    const dataDir = opts.dataDir ?? join(tempDir, 'data');
    const server = new LocalMysqlServer(bin, tempDir, dataDir, opts.port ?? 0, database, opts.startTimeoutMs ?? 60_000);
    live.add(server);
    installExitHook();
    try {
      await initialiseDataDir(bin, dataDir);
      mkdirSync(join(tempDir, 'tmp'), { recursive: true });
      // A port picked by us may be taken by someone else before the server binds it: retry.
      await retry(
        async () => {
          if (opts.port === undefined) server.currentPort = await freePort();
          await server.launch(false);
        },
        { attempts: 3, baseMs: 50, retryable: (err) => opts.port === undefined && err instanceof PortInUseError },
      );
      const conn = await connectAsRoot(server.port);
      try {
        await createDatabase(conn, database);
      } finally {
        await conn.end();
      }
      return server;
    } catch (err) {
      await server.destroy().catch(() => undefined);
      throw err;
    }
  }

  private serverArgs(restarting: boolean): string[] {
    const flavorArgs =
      this.bin.flavor === 'mariadb'
        ? ['--innodb-log-file-size=16M']
        : ['--mysqlx=OFF', `--mysqlx-socket=${join(this.tempDir, 'mysqlx.sock')}`];
    return [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      `--socket=${join(this.tempDir, 'mysqld.sock')}`,
      `--pid-file=${join(this.tempDir, 'mysqld.pid')}`,
      `--tmpdir=${join(this.tempDir, 'tmp')}`,
      `--port=${this.currentPort}`,
      '--bind-address=127.0.0.1',
      '--skip-networking=0',
      ...(isRoot() ? ['--user=root'] : []),
      '--innodb-buffer-pool-size=64M',
      // Commits survive a killed process (the outage tests), just not a machine crash.
      '--innodb-flush-log-at-trx-commit=2',
      '--skip-log-bin',
      '--max-connections=500',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
      // After kill(), wait for the old listener's port instead of failing at once.
      ...(restarting ? ['--port-open-timeout=15'] : []),
      ...flavorArgs,
    ];
  }

  /** Spawns the server and waits until it accepts a root connection. */
  private async launch(restarting: boolean): Promise<void> {
    this.output = '';
    const child = spawn(this.bin.server, this.serverArgs(restarting), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (err) => {
        this.output += `\n${err.message}`;
        resolve();
      });
    });
    // Do not hold the event loop open: a test that ends without destroy() still exits,
    // and the exit hook kills the server.
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stderr as Socket | null)?.unref();

    try {
      // Connection refused while it starts: look again, more slowly, until the deadline.
      await retry(() => this.answers(child), {
        retryable: (err) => !(err instanceof StartFailed),
        deadline: Date.now() + this.startTimeoutMs,
        baseMs: 100,
        maxMs: 250,
      });
    } catch (err) {
      if (err instanceof StartFailed) throw err;
      await this.kill();
      throw new Error(
        `local ${this.bin.flavor} server on port ${this.currentPort} did not accept connections within ` +
          `${this.startTimeoutMs} ms; its output:\n${tail(this.output)}`,
      );
    }
  }

  /** Resolves once our own server accepts root; throws StartFailed when it cannot start. */
  private async answers(child: ChildProcess): Promise<void> {
    if (!this.running) {
      await this.exited;
      const message =
        `local ${this.bin.flavor} server (${this.bin.server}) exited during start-up on port ${this.currentPort}` +
        ` (exit ${child.exitCode ?? child.signalCode}); its output:\n${tail(this.output)}`;
      throw /address already in use|bind on tcp\/ip port/i.test(this.output) ? new PortInUseError(message) : new StartFailed(message);
    }
    const conn = await connectAsRoot(this.currentPort, 1000);
    // Make sure it is ours and not another server that already had the port.
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@datadir AS datadir');
    await conn.end();
    const theirs = String(rows[0]?.datadir ?? '').replace(/\/+$/, '');
    if (theirs === realpathSync(this.dataDir)) return;
    await this.kill();
    throw new PortInUseError(`port ${this.currentPort} on 127.0.0.1 is already used by another MySQL/MariaDB server (datadir ${theirs})`);
  }

  private async waitForExit(timeoutMs: number): Promise<boolean> {
    if (!this.running) return true;
    this.child?.ref(); // keep the process alive while we wait
    const timer = new AbortController();
    try {
      const timedOut = sleep(timeoutMs, false, { signal: timer.signal }).catch(() => false);
      return await Promise.race([this.exited.then(() => true), timedOut]);
    } finally {
      timer.abort();
      this.child?.unref();
    }
  }

  /** Graceful shutdown: SIGTERM, wait for the process to exit (SIGKILL after 30 s). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    if (!(await this.waitForExit(30_000))) await this.kill();
  }

  /** Abrupt death (SIGKILL), as in an outage; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.waitForExit(10_000);
  }

  /** Starts the server again on the same port with the same data directory. */
  async restart(): Promise<void> {
    if (this.destroyed) throw new Error('LocalMysqlServer.restart() after destroy()');
    await this.stop();
    await this.launch(true);
  }

  /** Stops the server and removes its temporary directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.stop();
    this.destroyed = true;
    live.delete(this);
    this.removeFiles();
  }

  /** Last lines of the server's own output, for diagnostics. */
  outputTail(lines = 25): string {
    return tail(this.output, lines);
  }

  /** @internal Used by the process exit hook; synchronous by necessity. */
  killSync(): void {
    if (this.running && this.child?.pid) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.destroyed = true;
    this.removeFiles();
  }

  // A caller-provided data dir lies outside tempDir, so it is kept.
  private removeFiles(): void {
    rmSync(this.tempDir, { recursive: true, force: true, maxRetries: 3 });
  }
}
