import mysql, { type Pool, type PoolOptions } from 'mysql2/promise';
import { isRetryableDbError } from '../errors.js';

/** One row as mysql2 returns it. */
export type Row = Record<string, unknown>;

/**
 * Told of every statement once it has ended: its name (table-then-verb), whether it
 * succeeded, and for a failure whether it is worth another try. The daemon counts them
 * in metrics; db stays at the bottom of the import graph and knows no observer.
 */
export type StatementListener = (name: string, ok: boolean, retryable: boolean) => void;

export interface DbOptions {
  url: string;
  connectionLimit?: number;
  onStatement?: StatementListener;
  /** Called with false when a statement fails for lack of a server, true when one succeeds. */
  onHealth?: (healthy: boolean) => void;
}

/** A statement target: the pool, or the claim session's connection inside a transaction. */
export interface Executor {
  /** Runs one statement; `name` labels metrics and errors (table-then-verb, e.g. jobClaim). */
  run<T = Row[]>(name: string, sql: string, params?: unknown[]): Promise<T>;
}

/**
 * The collation of every sluice connection (and of the tests' pools): the tables'
 * default, which every column but the identifiers keeps (`status`, `error`, …).
 *
 * Parameters reach the server as literals in this collation, whose coercibility is the
 * weakest, so the column they meet decides: `status = ?` compares in the column's
 * utf8mb4_unicode_ci, and `queue = ?`, `worker IN (?)`, `id = ?` in the identifiers'
 * utf8mb4_bin (migration 002); each seeks its index (EXPLAIN on MariaDB 10.11: the claim
 * is `ref const,const` on jobs_claim — test/integration/explain.test.ts pins it).
 * utf8mb4_bin here would serve literals as well, but a value of equal (IMPLICIT)
 * coercibility, such as a user variable, would then pull `status` comparisons into
 * utf8mb4_bin; and another _ci (the server's utf8mb4_general_ci, MySQL 8's
 * utf8mb4_0900_ai_ci) raises "Illegal mix of collations" against `status` for them.
 * With the tables' own collation, every comparison is in the collation of its column.
 */
export const CONNECTION_COLLATION = 'utf8mb4_unicode_ci';

/** mysql2 pool options from a mysql:// URL, pinned to CONNECTION_COLLATION. */
export function poolOptionsFromUrl(url: string, connectionLimit = 10): PoolOptions {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    // Chosen for the columns the hot queries compare: see CONNECTION_COLLATION.
    charset: CONNECTION_COLLATION,
    // Instants stay strings: the daemon does no time arithmetic in JS, the server's NOW(3) rules.
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    connectionLimit,
    maxIdle: connectionLimit,
    idleTimeout: 60_000,
    connectTimeout: 5_000,
    enableKeepAlive: true,
    multipleStatements: false,
    // sluice never prepares a statement (query(), not execute()); mysql2 sizes four arrays
    // of every connection by this (16,000 by default: half a megabyte each, all kept by GC).
    maxPreparedStatements: 1,
    // No stack captured per statement for mysql2's own errors (Error.captureStackTrace at
    // every query: ~2 % of the daemon's CPU in a drain); sluice's errors name the statement.
    trace: false,
    waitForConnections: true,
    queueLimit: 0,
  };
}

/** The connection pool plus statement accounting (through onStatement) and health tracking. */
export class Database implements Executor {
  readonly pool: Pool;
  readonly options: PoolOptions;
  private readonly onStatement: StatementListener | undefined;
  private readonly onHealth: ((healthy: boolean) => void) | undefined;
  private healthy: boolean | undefined;

  constructor(opts: DbOptions) {
    this.options = poolOptionsFromUrl(opts.url, opts.connectionLimit);
    this.pool = mysql.createPool(this.options);
    this.onStatement = opts.onStatement;
    this.onHealth = opts.onHealth;
    // Claims rely on READ COMMITTED: no gap locks, so concurrent claimers do not deadlock.
    this.pool.pool.on('connection', (conn) => {
      conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    });
  }

  get databaseName(): string {
    return String(this.options.database);
  }

  async run<T = Row[]>(name: string, sql: string, params: unknown[] = []): Promise<T> {
    return this.track(name, async () => (await this.pool.query(sql, params))[0] as T);
  }

  /** A fresh dedicated connection (leadership, claims, migrations), outside the pool. */
  async connect(): Promise<mysql.Connection> {
    const { host, port, user, password, database, charset, dateStrings, connectTimeout, enableKeepAlive, maxPreparedStatements, trace } = this.options;
    return mysql.createConnection({ host, port, user, password, database, charset, dateStrings, connectTimeout, enableKeepAlive, maxPreparedStatements, trace });
  }

  async end(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  /** Runs one statement's work with accounting: the statement listener, health. */
  async tracked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.track(name, fn);
  }

  private async track<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      this.failed(name, err);
      throw err;
    }
    this.setHealth(true);
    this.onStatement?.(name, true, false);
    return out;
  }

  private failed(name: string, err: unknown): void {
    this.onStatement?.(name, false, isRetryableDbError(err));
    const e = err as { code?: string; fatal?: boolean };
    if (e.fatal || e.code === 'ECONNREFUSED' || e.code === 'PROTOCOL_CONNECTION_LOST' || e.code === 'ETIMEDOUT') this.setHealth(false);
  }

  private setHealth(healthy: boolean): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.onHealth?.(healthy);
  }
}
