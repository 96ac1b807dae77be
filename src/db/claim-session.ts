import type mysql from 'mysql2/promise';
import { coerceError } from '../errors.js';
import type { Database, Executor } from './database.js';

/** A claim whose transaction stays open: its rows stay locked until commit. */
export interface OpenClaim {
  tx: Executor;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * The claimer's own connection, with autocommit off: a transaction starts with its first
 * statement, so a claim is `SELECT … FOR UPDATE SKIP LOCKED`, `UPDATE`, `COMMIT` — three
 * statements, not four — and an empty look is `SELECT`, `COMMIT`. Only claims run here
 * (one at a time), so no other work is caught in its transactions. A broken connection is
 * dropped and the next claim opens a fresh one.
 *
 * A claim may be held open (`keepOpen`): its connection leaves with the transaction, and
 * comes back as a spare once that commits; the next claim meanwhile takes another.
 */
export class ClaimSession {
  private conn: mysql.Connection | undefined;
  private opening: Promise<mysql.Connection> | undefined;
  private readonly spare: mysql.Connection[] = [];
  /** Connections whose claims are still open. */
  private readonly lent = new Set<mysql.Connection>();
  private ended = false;

  constructor(private readonly db: Database) {}

  async transaction<T>(name: string, work: (tx: Executor, keepOpen: () => OpenClaim) => Promise<T>): Promise<T> {
    const conn = await this.connection(name);
    const tx: Executor = {
      run: <R>(stmt: string, sql: string, params: unknown[] = []) => this.db.tracked(stmt, async () => (await conn.query(sql, params))[0] as R),
    };
    let open: OpenClaim | undefined;
    const keepOpen = (): OpenClaim => {
      // The connection leaves the session with its transaction; the next claim opens another.
      if (this.conn === conn) this.conn = undefined;
      this.lent.add(conn);
      open = {
        tx,
        commit: async () => {
          await this.db.tracked(`${name}Commit`, () => conn.query('COMMIT'));
          this.lent.delete(conn);
          // Back to the spares, never straight to `conn`: a connection being opened meanwhile
          // would overwrite it there and leak it.
          if (this.ended) conn.destroy();
          else this.spare.push(conn);
        },
        rollback: async () => {
          await conn.query('ROLLBACK').catch(() => undefined);
          this.lent.delete(conn);
          conn.destroy();
        },
      };
      return open;
    };
    try {
      const result = await work(tx, keepOpen);
      if (!open) await this.db.tracked(`${name}Commit`, () => conn.query('COMMIT'));
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
    this.ended = true;
    for (const c of this.spare.splice(0)) await c.end().catch(() => c.destroy());
    // An open claim that never closed rolls back with its connection: its rows are pending again.
    for (const c of this.lent) c.destroy();
    this.lent.clear();
  }

  private async connection(name: string): Promise<mysql.Connection> {
    if (this.conn) return this.conn;
    const spare = this.spare.pop();
    if (spare) return (this.conn = spare);
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
