// The installed MariaDB/MySQL programs: where the server and mariadb-install-db are, and
// how a fresh data directory is initialised with them. No process is kept running here.
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

export interface Binaries {
  server: string;
  flavor: 'mariadb' | 'mysql';
  /** mariadb-install-db (MariaDB only: MySQL initialises with `--initialize-insecure`). */
  installDb?: string;
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

/** The last lines of a program's output, for error messages. */
export function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Running as root: the server then needs `--user=root` to agree to start. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The server binary and its flavour, plus MariaDB's data-directory initialiser. */
export async function findBinaries(): Promise<Binaries> {
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

/** Creates the system tables in `dataDir` (root, empty password); an existing one is kept as it is. */
export async function initialiseDataDir(bin: Binaries, dataDir: string): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  if (readdirSync(dataDir).length > 0) return; // existing data: keep it
  const asRoot = isRoot() ? ['--user=root'] : [];
  const result =
    bin.installDb !== undefined
      ? await run(
          bin.installDb,
          [
            '--no-defaults',
            '--auth-root-authentication-method=normal',
            `--datadir=${dataDir}`,
            ...asRoot,
            '--skip-test-db',
            '--innodb-log-file-size=16M',
          ],
          120_000,
        )
      : await run(bin.server, ['--no-defaults', '--initialize-insecure', `--datadir=${dataDir}`, ...asRoot], 120_000);
  if (result.code !== 0) {
    throw new Error(`initialising ${bin.flavor} data directory ${dataDir} failed (exit ${result.code}):\n${tail(result.output)}`);
  }
}
