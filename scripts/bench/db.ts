/**
 * The bench's own connection (root) to the server resolveDatabaseServer() picks, the
 * daemons' URL (a dedicated user, so the server counts their statements apart), and the
 * helpers that reset and fill the bench database.
 */
import mysql from 'mysql2/promise';
import { resolveDatabaseServer } from '../local-mysql/database-url.js';
import { DB, USER } from './config.js';

const server = new URL((await resolveDatabaseServer({ log: (line) => process.stderr.write(`bench: ${line}\n`) })).url);
const rootUrl = `mysql://${server.username || 'root'}${server.password ? `:${server.password}` : ''}@${server.hostname}:${server.port || 3306}/`;
export const daemonUrl = `mysql://${USER}:bench@${server.hostname}:${server.port || 3306}/${DB}`;
export const root = mysql.createPool({ uri: rootUrl, connectionLimit: 4, dateStrings: true, charset: 'utf8mb4_unicode_ci' });

export async function q<T = mysql.RowDataPacket[]>(sql: string, params: unknown[] = []): Promise<T> {
  return (await root.query(sql, params))[0] as T;
}

export async function resetDatabase(): Promise<void> {
  await q(`DROP DATABASE IF EXISTS ${DB}`);
  await q(`CREATE DATABASE ${DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await q(`CREATE USER IF NOT EXISTS '${USER}'@'%' IDENTIFIED BY 'bench'`);
  await q(`GRANT ALL ON ${DB}.* TO '${USER}'@'%'`);
  await q('SET GLOBAL userstat = 1');
}

export async function insertNoops(n: number, ms = 0): Promise<void> {
  for (let done = 0; done < n; done += 5000) {
    const rows = Array.from({ length: Math.min(5000, n - done) }, () => ['sleep', JSON.stringify({ ms })]);
    await q(`INSERT INTO ${DB}.jobs (type, payload) VALUES ?`, [rows]);
  }
}

export async function pickupPercentiles(afterId = 0): Promise<{ p50: number; p99: number }> {
  const rows = await q(`SELECT TIMESTAMPDIFF(MICROSECOND, run_at, started_at) / 1000 AS ms FROM ${DB}.jobs WHERE started_at IS NOT NULL AND id > ? ORDER BY ms`, [afterId]);
  const at = (p: number): number => Math.round(Number(rows[Math.min(rows.length - 1, Math.floor(p * rows.length))]?.ms ?? NaN) * 10) / 10;
  return { p50: at(0.5), p99: at(0.99) };
}
