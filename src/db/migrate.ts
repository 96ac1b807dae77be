import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type mysql from 'mysql2/promise';
import type { Database } from './database.js';

/** migrations/ beside src/ and dist/, whichever runs. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const LOCK_TIMEOUT_S = 60;

export interface MigrationResult {
  applied: string[];
  current: number;
}

/**
 * Applies numbered `NNN_name.sql` files not yet recorded in `sluice_migrations`, in
 * order, under a server lock so replicas starting together apply each file once.
 * DDL commits implicitly in MySQL, so each file is written to be re-runnable
 * (IF NOT EXISTS, OR REPLACE, a MODIFY to the definition the column already has) in
 * case a process dies half-way.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = await migrationFiles(dir);
  // Every start but the first finds nothing to apply: one read through the pool, without
  // the lock or a connection of its own. Files are only ever added, so a set that holds
  // every file's version has nothing left to do.
  const known = await appliedVersions(db);
  if (known !== undefined && files.every((f) => known.has(versionOf(f)))) return { applied: [], current: Math.max(0, ...known) };
  const conn = await db.connect();
  const lock = `sluice:migrate:${db.databaseName}`;
  try {
    const [got] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [lock, LOCK_TIMEOUT_S]);
    if (got[0]?.got !== 1) throw new Error(`could not take the migration lock "${lock}" within ${LOCK_TIMEOUT_S}s`);
    await conn.query(`CREATE TABLE IF NOT EXISTS sluice_migrations (
      version INT NOT NULL PRIMARY KEY,
      name VARCHAR(255) NOT NULL,
      applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci`);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT version FROM sluice_migrations');
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: string[] = [];
    let current = Math.max(0, ...done);
    for (const file of files) {
      const version = versionOf(file);
      if (done.has(version)) continue;
      for (const statement of splitStatements(await readFile(`${dir}/${file}`, 'utf8'))) await conn.query(statement);
      await conn.query('INSERT INTO sluice_migrations (version, name) VALUES (?, ?)', [version, file]);
      applied.push(file);
      current = Math.max(current, version);
    }
    return { applied, current };
  } finally {
    await conn.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => undefined);
    await conn.end().catch(() => undefined);
  }
}

/** The versions recorded as applied; undefined before the first migration made the table. */
async function appliedVersions(db: Database): Promise<Set<number> | undefined> {
  try {
    const rows = await db.run<Array<{ version: number }>>('migrationsApplied', 'SELECT version FROM sluice_migrations');
    return new Set(rows.map((r) => Number(r.version)));
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') return undefined;
    throw err;
  }
}

function versionOf(file: string): number {
  return Number(file.split('_')[0]);
}

/** The `NNN_name.sql` files of `dir`, in the order they apply. */
export async function migrationFiles(dir = MIGRATIONS_DIR): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort();
}

/** True when every migration file is recorded as applied. */
export async function migrationsDone(db: Database, dir = MIGRATIONS_DIR): Promise<boolean> {
  const files = await migrationFiles(dir);
  const rows = await db.run<Array<{ n: number }>>('migrationsCount', 'SELECT COUNT(*) AS n FROM sluice_migrations');
  return Number(rows[0]?.n) >= files.length;
}

/** Splits a migration file at semicolons that end a line; strips `--` comment lines. */
export function splitStatements(sqlText: string): string[] {
  return sqlText
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
