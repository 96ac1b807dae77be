import type mysql from 'mysql2/promise';
import { waitFor } from './database.js';

/** A jobs row to insert; anything left out takes the table's default. */
export interface JobSpec {
  type?: string;
  queue?: string;
  payload?: unknown;
  priority?: number;
  runAtOffsetMs?: number;
  maxAttempts?: number;
  timeoutMs?: number | null;
  concurrencyKey?: string | null;
  uniqueKey?: string | null;
  paused?: boolean;
}

/** Inserts jobs the way a user would (plain INSERT); returns their ids in order. */
export async function insertJobs(pool: mysql.Pool, specs: readonly JobSpec[]): Promise<number[]> {
  if (specs.length === 0) return [];
  const rows = specs.map((s) => [
    s.queue ?? 'default',
    s.type ?? 'sleep',
    s.payload === undefined ? JSON.stringify({ ms: 0 }) : JSON.stringify(s.payload),
    s.priority ?? 0,
    (s.runAtOffsetMs ?? 0) * 1000,
    s.maxAttempts ?? 3,
    s.timeoutMs ?? null,
    s.concurrencyKey ?? null,
    s.uniqueKey ?? null,
    s.paused ?? false,
  ]);
  const placeholders = rows.map(() => '(?, ?, ?, ?, NOW(3) + INTERVAL ? MICROSECOND, ?, ?, ?, ?, ?)').join(', ');
  const [r] = await pool.query<mysql.ResultSetHeader>(
    `INSERT INTO jobs (queue, type, payload, priority, run_at, max_attempts, timeout_ms, concurrency_key, unique_key, paused) VALUES ${placeholders}`,
    rows.flat(),
  );
  return Array.from({ length: specs.length }, (_, i) => r.insertId + i);
}

export async function insertJob(pool: mysql.Pool, spec: JobSpec = {}): Promise<number> {
  const [id] = await insertJobs(pool, [spec]);
  return id as number;
}

export interface JobRow {
  id: number;
  queue: string;
  type: string;
  status: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  error: string | null;
  result: unknown;
  worker: string | null;
  progress: number | null;
  run_at: string;
  queued_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  cancelled_at: string | null;
}

export async function getJob(pool: mysql.Pool, id: number): Promise<JobRow> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT * FROM jobs WHERE id = ?', [id]);
  if (!rows[0]) throw new Error(`job ${id} not found`);
  return rows[0] as JobRow;
}

const FINAL = ['done', 'failed', 'cancelled'];

/** Waits until the job is final (done, failed or cancelled) and returns its row. */
export async function waitFinished(pool: mysql.Pool, id: number, timeoutMs = 15_000): Promise<JobRow> {
  return waitFor(
    async () => {
      const job = await getJob(pool, id);
      return FINAL.includes(job.status) ? job : undefined;
    },
    { timeoutMs, message: `job ${id} never finished` },
  );
}

export async function jobsByStatus(pool: mysql.Pool): Promise<Record<string, number>> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status as string, Number(r.n)]));
}

/** The table test handlers write their side effects to. */
export async function createEffectsTable(pool: mysql.Pool): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS effects (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY, job_id BIGINT NOT NULL, attempt INT NOT NULL,
    worker VARCHAR(255) NOT NULL, what VARCHAR(32) NOT NULL, at DATETIME(3) NOT NULL DEFAULT NOW(3), KEY (job_id)
  )`);
}
