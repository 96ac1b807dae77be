// The one choice of database server for the demo, the bench and the tests:
// 1. DATABASE_URL when set;
// 2. else the server on 127.0.0.1:3306 when it answers as root with an empty password;
// 3. else a throwaway LocalMysqlServer, killed and removed when the process exits.
import { connectAsRoot, createDatabase, LocalMysqlServer } from './server.js';

export interface DatabaseServer {
  /** mysql://… of the server, without a database (the path is `/`). */
  url: string;
  /** Where it came from: DATABASE_URL, the shared server on 127.0.0.1:3306, or a private one. */
  source: 'DATABASE_URL' | 'shared' | 'private';
  /** The private server, when one was started: destroy it when done (or let the exit hook). */
  server?: LocalMysqlServer;
}

export interface ResolveOptions {
  /** Hears how the server was chosen. */
  log?: (line: string) => void;
  /** The shared server's port on 127.0.0.1 (tests pass a dead one to get a private server). Default 3306. */
  sharedPort?: number;
}

/** The server to use, by the rule above. */
export async function resolveDatabaseServer(opts: ResolveOptions = {}): Promise<DatabaseServer> {
  const log = opts.log ?? (() => undefined);
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { url: withoutDatabase(fromEnv), source: 'DATABASE_URL' };

  const sharedPort = opts.sharedPort ?? 3306;
  const conn = await connectAsRoot(sharedPort).catch(() => undefined);
  if (conn) {
    await conn.end();
    return { url: `mysql://root@127.0.0.1:${sharedPort}/`, source: 'shared' };
  }

  log(`DATABASE_URL is unset and nothing answers on 127.0.0.1:${sharedPort}: starting a throwaway local server`);
  const started = Date.now();
  const server = await LocalMysqlServer.start();
  log(`local server ready on port ${server.port} in ${Date.now() - started} ms (data in ${server.dataDir}, removed at exit)`);
  return { url: withoutDatabase(server.url), source: 'private', server };
}

/**
 * The database a script should use: DATABASE_URL as it is when set; else `database`,
 * created if missing, on the server resolveDatabaseServer() picks.
 */
export async function resolveDatabaseUrl(
  log: (line: string) => void = () => undefined,
  database = 'sluice',
): Promise<{ url: string; server?: LocalMysqlServer }> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { url: fromEnv };
  const { url, source, server } = await resolveDatabaseServer({ log });
  const port = Number(new URL(url).port);
  const conn = await connectAsRoot(port);
  try {
    await createDatabase(conn, database);
  } finally {
    await conn.end();
  }
  if (source === 'shared') log(`DATABASE_URL is unset: using the server on 127.0.0.1:3306, database ${database}`);
  return { url: `${url}${database}`, server };
}

function withoutDatabase(url: string): string {
  const u = new URL(url);
  u.pathname = '/';
  return u.href;
}
