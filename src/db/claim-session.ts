import type mysql from 'mysql2/promise';
import { coerceError } from '../errors.js';
import type { Database, Executor } from './database.js';

/**
 * The claimer's own connection, with autocommit off: a transaction starts with its first
 * statement, so a claim is `SELECT … FOR UPDATE SKIP LOCKED`, `UPDATE`, `COMMIT` — three
 * statements, not four — and an empty look is `SELECT`, `COMMIT`. Only claims run here
 * (one at a time), so no other work is caught in its transactions. A broken connection is
 * dropped and the next claim opens a fresh one.
 */
export class ClaimSession {
  private conn: mysql.Connection | undefined;
  private opening: Promise<mysql.Connection> | undefined;

  constructor(private readonly db: Database) {}

  async transaction<T>(name: string, work: (tx: Executor) => Promise<T>): Promise<T> {
    const conn = await this.connection(name);
    const tx: Executor = {
      run: <R>(stmt: string, sql: string, params: unknown[] = []) => this.db.tracked(stmt, async () => (await conn.query(sql, params))[0] as R),
    };
    try {
      const result = await work(tx);
      await this.db.tracked(`${name}Commit`, () => conn.query('COMMIT'));
      return result;
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => this.drop(conn));
      throw err;
    }
  }

  async end(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    await conn?.end().catch(() => conn.destroy());
  }

  private async connection(name: string): Promise<mysql.Connection> {
    if (this.conn) return this.conn;
    this.opening ??= this.db
      .tracked(`${name}Connect`, async () => {
        const conn = await this.db.connect();
        conn.on('error', () => this.drop(conn));
        try {
          // READ COMMITTED: no gap locks, so concurrent claimers do not deadlock.
          await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
          await conn.query('SET SESSION autocommit = 0');
        } catch (err) {
          conn.destroy();
          throw coerceError(err);
        }
        this.conn = conn;
        return conn;
      })
      .finally(() => (this.opening = undefined));
    return this.opening;
  }

  private drop(conn: mysql.Connection): void {
    if (this.conn === conn) this.conn = undefined;
    conn.destroy();
  }
}
