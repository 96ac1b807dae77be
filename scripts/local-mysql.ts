// A private, throwaway MariaDB/MySQL server for the demo and the tests.
//
// LocalMysqlServer runs the installed `mariadbd` (or `mysqld`) in a fresh temporary
// directory, on its own port on 127.0.0.1, as root with an empty password. It never
// touches the machine's own server or its configuration (`--no-defaults`). Outage tests
// use kill() and restart(): the server goes away and comes back on the same address with
// the same data.
//
// resolveDatabaseUrl() picks the database for the demo: DATABASE_URL, else a server
// answering on 127.0.0.1:3306, else a LocalMysqlServer.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';

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

const INSTALL_HINT =
  'No MariaDB/MySQL server binary found (looked for mariadbd and mysqld in PATH, /usr/sbin, ' +
  '/usr/local/sbin and /usr/bin). Install one, e.g. `apt-get install mariadb-server` ' +
  '(Debian/Ubuntu), `brew install mariadb` (macOS), or set DATABASE_URL to an existing server.';

const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin'];

function findExecutable(names: string[], extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs, ...SEARCH_DIRS];
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function run(file: string, args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const output = `${stdout}${stderr}`;
      resolve({ code, output: error && !output.trim() ? error.message : output });
    });
  });
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function freePort(): Promise<number> {
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

function assertDatabaseName(name: string): void {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(name)) {
    throw new Error(`invalid database name ${JSON.stringify(name)}: use letters, digits and _ only`);
  }
}

/** Connects as root with an empty password; resolves to undefined when nothing answers. */
async function tryConnect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<mysql.Connection | undefined> {
  try {
    return await mysql.createConnection({ host, port, user: 'root', password: '', connectTimeout: timeoutMs });
  } catch {
    return undefined;
  }
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

class PortInUseError extends Error {}

interface Binaries {
  server: string;
  flavor: 'mariadb' | 'mysql';
  installDb?: string;
}

async function findBinaries(): Promise<Binaries> {
  const server = findExecutable(['mariadbd', 'mysqld']);
  if (!server) throw new Error(INSTALL_HINT);
  const version = await run(server, ['--version'], 15_000);
  const flavor = /mariadb/i.test(version.output) ? 'mariadb' : 'mysql';
  if (flavor === 'mysql') return { server, flavor };
  // mariadb-install-db lives in bin/ next to sbin/ (Debian) or beside the server (Homebrew).
  const installDb = findExecutable(['mariadb-install-db', 'mysql_install_db'], [
    dirname(server),
    join(dirname(dirname(server)), 'bin'),
    join(dirname(dirname(server)), 'scripts'),
  ]);
  if (!installDb) {
    throw new Error(`found ${server} but not mariadb-install-db to initialise a data directory; install mariadb-server`);
  }
  return { server, flavor, installDb };
}

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
    const server = new LocalMysqlServer(
      bin,
      tempDir,
      dataDir,
      opts.port ?? 0,
      database,
      opts.startTimeoutMs ?? 60_000,
    );
    live.add(server);
    installExitHook();
    try {
      await server.initialise();
      // A port picked by us may be taken by someone else before the server binds it: retry.
      for (let attempt = 1; ; attempt++) {
        if (opts.port === undefined) server.currentPort = await freePort();
        try {
          await server.launch(false);
          break;
        } catch (err) {
          if (opts.port !== undefined || !(err instanceof PortInUseError) || attempt >= 3) throw err;
        }
      }
      const conn = await tryConnect(server.port);
      if (!conn) throw new Error(`local ${bin.flavor} server on port ${server.port} stopped answering`);
      try {
        await conn.query(
          `CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
        );
      } finally {
        await conn.end();
      }
      return server;
    } catch (err) {
      await server.destroy().catch(() => undefined);
      throw err;
    }
  }

  private async initialise(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    mkdirSync(join(this.tempDir, 'tmp'), { recursive: true });
    if (readdirSync(this.dataDir).length > 0) return; // existing data: keep it
    const asRoot = isRoot() ? ['--user=root'] : [];
    const installDb = this.bin.installDb;
    const result =
      installDb !== undefined
        ? await run(
            installDb,
            [
              '--no-defaults',
              '--auth-root-authentication-method=normal',
              `--datadir=${this.dataDir}`,
              ...asRoot,
              '--skip-test-db',
              '--innodb-log-file-size=16M',
            ],
            120_000,
          )
        : await run(
            this.bin.server,
            ['--no-defaults', '--initialize-insecure', `--datadir=${this.dataDir}`, ...asRoot],
            120_000,
          );
    if (result.code !== 0) {
      throw new Error(
        `initialising ${this.bin.flavor} data directory ${this.dataDir} failed (exit ${result.code}):\n${tail(result.output)}`,
      );
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

    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (!this.running) {
        await this.exited;
        const message =
          `local ${this.bin.flavor} server (${this.bin.server}) exited during start-up on port ${this.currentPort}` +
          ` (exit ${child.exitCode ?? child.signalCode}); its output:\n${tail(this.output)}`;
        throw /address already in use|bind on tcp\/ip port/i.test(this.output)
          ? new PortInUseError(message)
          : new Error(message);
      }
      const conn = await tryConnect(this.currentPort);
      if (conn) {
        // Make sure it is ours and not another server that already had the port.
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@datadir AS datadir');
        await conn.end();
        const theirs = String(rows[0]?.datadir ?? '').replace(/\/+$/, '');
        if (theirs === realpathSync(this.dataDir)) return;
        await this.kill();
        throw new PortInUseError(
          `port ${this.currentPort} on 127.0.0.1 is already used by another MySQL/MariaDB server (datadir ${theirs})`,
        );
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(
          `local ${this.bin.flavor} server on port ${this.currentPort} did not accept connections within ` +
            `${this.startTimeoutMs} ms; its output:\n${tail(this.output)}`,
        );
      }
      await sleep(100);
    }
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

/**
 * The database the demo (or a script) should use:
 * 1. DATABASE_URL when set;
 * 2. else the server on 127.0.0.1:3306 when it answers as root with an empty password;
 * 3. else a throwaway LocalMysqlServer (returned as `server`: destroy it when done —
 *    it is also killed and removed when the process exits).
 */
export async function resolveDatabaseUrl(
  log: (line: string) => void = () => undefined,
  database = 'sluice',
): Promise<{ url: string; server?: LocalMysqlServer }> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { url: fromEnv };

  assertDatabaseName(database);
  const conn = await tryConnect(3306);
  if (conn) {
    try {
      await conn.query(
        `CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
      );
    } finally {
      await conn.end();
    }
    log(`DATABASE_URL is unset: using the server on 127.0.0.1:3306, database ${database}`);
    return { url: `mysql://root@127.0.0.1:3306/${database}` };
  }

  log('DATABASE_URL is unset and nothing answers on 127.0.0.1:3306: starting a throwaway local server');
  const started = Date.now();
  const server = await LocalMysqlServer.start({ database });
  log(`local server ready at ${server.url} in ${Date.now() - started} ms (data in ${server.dataDir}, removed at exit)`);
  return { url: server.url, server };
}
