import mysql, { type Pool } from 'mysql2/promise';
import { poolOptionsFromUrl, type Executor, type Row } from '../db/database.js';
import type { Metrics } from '../observability/metrics.js';

/** Every page statement is stopped by the server after this long. */
export const STATEMENT_LIMIT_MS = 2000;

/** Which spelling of the time limit the server takes. */
export type Flavor = 'mariadb' | 'mysql';

/**
 * Puts the server-side time limit on one statement. The two servers spell it apart, and
 * neither accepts the other's way, so this branches on the server (both branches have a
 * unit test; the browser and integration tests run the MariaDB one):
 *  - MariaDB: `SET STATEMENT max_statement_time = s FOR <statement>` (10.1+, any statement);
 *  - MySQL 8: the optimizer hint `SELECT /*+ MAX_EXECUTION_TIME(ms) *\/ …` (SELECT only;
 *    MariaDB before 12 reads the hint as a comment, hence the branch).
 * Statements other than SELECT on MySQL run without a limit: they are the actions, each a
 * primary-key or LIMITed-range UPDATE.
 */
export function withTimeLimit(flavor: Flavor, sql: string, limitMs: number): string {
  if (flavor === 'mariadb') return `SET STATEMENT max_statement_time = ${(limitMs / 1000).toFixed(3)} FOR ${sql}`;
  return sql.replace(/^\s*SELECT\b/i, `SELECT /*+ MAX_EXECUTION_TIME(${Math.round(limitMs)}) */`);
}

/** MariaDB 1969 (ER_STATEMENT_TIMEOUT), MySQL 3024 (ER_QUERY_TIMEOUT). */
export function isStatementTimeout(err: unknown): boolean {
  const errno = (err as { errno?: number }).errno;
  return errno === 1969 || errno === 3024;
}

export interface DashboardDbOptions {
  url: string;
  metrics?: Metrics;
  limitMs?: number;
  /** Connections: the dashboard never takes one from the daemon's pool. */
  connectionLimit?: number;
}

/**
 * The dashboard's own small pool. Separate from the daemon's so that viewers, however
 * many, wait for each other and never for a claim or an outcome write; its queue is
 * bounded so a flood of requests fails fast (503) instead of piling up.
 */
export class DashboardDb implements Executor {
  readonly pool: Pool;
  private flavor: Promise<Flavor> | undefined;
  private readonly limitMs: number;

  constructor(private readonly opts: DashboardDbOptions) {
    this.limitMs = opts.limitMs ?? STATEMENT_LIMIT_MS;
    const connectionLimit = opts.connectionLimit ?? 3;
    this.pool = mysql.createPool({ ...poolOptionsFromUrl(opts.url, connectionLimit), queueLimit: 50 });
  }

  async run<T = Row[]>(name: string, sql: string, params: unknown[] = []): Promise<T> {
    this.opts.metrics?.dbStatements.inc({ statement: `dashboard:${name}` });
    const limited = withTimeLimit(await this.serverFlavor(), sql, this.limitMs);
    try {
      return (await this.pool.query(limited, params))[0] as T;
    } catch (err) {
      this.opts.metrics?.dbErrors.inc({ statement: `dashboard:${name}`, retryable: 'false' });
      throw err;
    }
  }

  async end(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  private serverFlavor(): Promise<Flavor> {
    this.flavor ??= this.pool.query('SELECT VERSION() AS v').then(
      ([rows]) => (String((rows as Array<{ v: string }>)[0]?.v).includes('MariaDB') ? 'mariadb' : 'mysql'),
      (err: unknown) => {
        this.flavor = undefined;
        throw err;
      },
    );
    return this.flavor;
  }
}
