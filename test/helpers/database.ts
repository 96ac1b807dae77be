// Test helpers for the shared MySQL/MariaDB server.
//
// The server is resolveDatabaseServer()'s, as for the scripts: DATABASE_URL's (its
// database part is ignored), else the one on 127.0.0.1:3306 (root, empty password), else
// one throwaway LocalMysqlServer per test process, started on first use and removed when
// the process exits. Each test file takes its own fresh database with freshDatabase() and
// drops it when done.
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { resolveDatabaseServer } from '../../scripts/local-mysql/database-url.js';
import { CONNECTION_COLLATION } from '../../src/db/database.js';

export interface FreshDatabase {
  /** mysql://… URL of the new database (what DATABASE_URL would be for the daemon). */
  url: string;
  name: string;
  pool: mysql.Pool;
  /** Closes the pool and drops the database; safe to call twice. */
  drop(): Promise<void>;
}

/**
 * Pool options the tests share with the daemon's own pool: the same connection collation
 * (see CONNECTION_COLLATION for why), so EXPLAIN here sees the daemon's plans.
 */
export const POOL_OPTIONS = {
  charset: CONNECTION_COLLATION,
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: false,
  decimalNumbers: true,
} as const;

let serverUrl: Promise<URL> | undefined;

/** The server's URL without a database, resolved once per process (the scripts' rule). */
function server(): Promise<URL> {
  serverUrl ??= resolveDatabaseServer().then(({ url }) => new URL(url));
  // A failed start is not cached, so the next call tries again.
  void serverUrl.catch(() => (serverUrl = undefined));
  return serverUrl;
}

/** A new, uniquely named database (`t_<prefix>_<random>`) with a pool on it. */
export async function freshDatabase(prefix: string): Promise<FreshDatabase> {
  const base = await server();
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 40);
  const name = `t_${clean}_${randomBytes(4).toString('hex')}`;

  const admin = await mysql.createConnection({ uri: base.href, connectTimeout: 5000 });
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.end();
  }

  const dbUrl = new URL(base.href);
  dbUrl.pathname = `/${name}`;
  const url = dbUrl.href;
  const pool = mysql.createPool({ uri: url, ...POOL_OPTIONS });
  let dropped = false;
  return {
    url,
    name,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end();
      const conn = await mysql.createConnection({ uri: base.href, connectTimeout: 5000 });
      try {
        await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await conn.end();
      }
    },
  };
}

/** The rows a query returns. */
export async function rows(pool: mysql.Pool, sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  const [result] = await pool.query<mysql.RowDataPacket[]>(sql, params);
  return result;
}

/** The number in column `n` of the first row: `SELECT COUNT(*) n FROM …`. */
export async function count(pool: mysql.Pool, sql: string, params: unknown[] = []): Promise<number> {
  return Number((await rows(pool, sql, params))[0]?.n);
}

/**
 * rows() and count() bound to the pool a test file assigns in before():
 * `const { rows, count } = queriesOn(() => pool);`.
 */
export function queriesOn(pool: () => mysql.Pool): {
  rows: (sql: string, params?: unknown[]) => Promise<mysql.RowDataPacket[]>;
  count: (sql: string, params?: unknown[]) => Promise<number>;
} {
  return { rows: (sql, params) => rows(pool(), sql, params), count: (sql, params) => count(pool(), sql, params) };
}

export { waitFor, type WaitForOptions } from './wait-for.js';
