import type { Database, Executor } from './database.js';

/**
 * Runs `work` in one transaction on a pooled connection (READ COMMITTED, set when the
 * pool opens it): COMMIT if it returns, ROLLBACK if it throws. A connection whose
 * ROLLBACK fails is destroyed, not returned to the pool with a transaction open.
 * Statements are counted under their own names; BEGIN and COMMIT as `${name}Begin/Commit`.
 */
export async function inTransaction<T>(db: Database, name: string, work: (tx: Executor) => Promise<T>): Promise<T> {
  const conn = await db.pool.getConnection();
  const tx: Executor = {
    run: <R>(stmt: string, sql: string, params: unknown[] = []) => db.tracked(stmt, async () => (await conn.query(sql, params))[0] as R),
  };
  try {
    await db.tracked(`${name}Begin`, () => conn.query('START TRANSACTION'));
    const result = await work(tx);
    await db.tracked(`${name}Commit`, () => conn.query('COMMIT'));
    conn.release();
    return result;
  } catch (err) {
    try {
      await conn.query('ROLLBACK');
      conn.release();
    } catch {
      conn.destroy();
    }
    throw err;
  }
}
