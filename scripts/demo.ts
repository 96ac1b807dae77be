/**
 * `npm run demo`: the classic demo of background-processing.txt, end to end.
 *
 * Starts the real daemon (`node dist/main.js`) against a local database (DATABASE_URL,
 * else 127.0.0.1:3306, else a throwaway server it starts), inserts jobs with plain SQL —
 * every third one stuck (`{"ms": null}`) with a 10 s timeout — prints the job table each
 * time it changes, and stops when every job is final: stuck jobs end CANCELLED! as dead.
 *
 * Knobs: DEMO_JOBS (30), DEMO_SLEEP_MS (1000), DEMO_TIMEOUT_MS (10000), DEMO_KEEP=1 (leave the
 * daemon and its dashboard running until Ctrl-C), SLUICE_DASHBOARD_PORT (9091).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { resolveDatabaseUrl } from './local-mysql/database-url.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const JOBS = Number(process.env.DEMO_JOBS ?? 30);
const SLEEP_MS = Number(process.env.DEMO_SLEEP_MS ?? 1000);
const TIMEOUT_MS = Number(process.env.DEMO_TIMEOUT_MS ?? 10_000);
const QUEUE = 'demo';
const KEEP = ['1', 'true', 'yes'].includes(String(process.env.DEMO_KEEP ?? '').toLowerCase());
const DASHBOARD_PORT = process.env.SLUICE_DASHBOARD_PORT ?? '9091';
const COLUMNS = ['id', 'object_id', 'sleep', 'status', 'created_at', 'queued_at', 'started_at', 'finished_at', 'cancelled_at'] as const;

const say = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const { url, server } = await resolveDatabaseUrl((line) => say(`demo: ${line}`), 'sluice_demo');
  const daemon = spawn(process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: url,
      SLUICE_QUEUES: QUEUE,
      SLUICE_HTTP_PORT: process.env.SLUICE_HTTP_PORT ?? '0',
      SLUICE_WORKER_ID: process.env.SLUICE_WORKER_ID ?? 'demo-worker',
      SLUICE_DASHBOARD_PORT: DASHBOARD_PORT,
      SLUICE_DASHBOARD_ACTIONS: process.env.SLUICE_DASHBOARD_ACTIONS ?? 'true',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number>((resolve) => daemon.on('exit', (code) => resolve(code ?? 1)));
  const pool = mysql.createPool({ uri: url, connectionLimit: 2, dateStrings: true, charset: 'utf8mb4_unicode_ci' });
  try {
    say('demo: waiting for the daemon to apply migrations and register…');
    await until(async () => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>("SELECT 1 FROM job_workers WHERE id = 'demo-worker'");
      return rows.length > 0;
    }, 60_000, exited);

    // What a user's program would do: a plain INSERT per job.
    const values = Array.from({ length: JOBS }, (_, i) => [
      QUEUE,
      'sleep',
      JSON.stringify({ object_id: 10, ms: (i + 1) % 3 === 2 ? null : SLEEP_MS }),
      TIMEOUT_MS,
    ]);
    const [inserted] = await pool.query<mysql.ResultSetHeader>('INSERT INTO jobs (queue, type, payload, timeout_ms) VALUES ?', [values]);
    const firstId = inserted.insertId;
    if (DASHBOARD_PORT !== '0') say(`demo: dashboard: http://127.0.0.1:${DASHBOARD_PORT}/  (DEMO_KEEP=1 keeps it running after the demo)`);
    say(`demo: inserted ${JOBS} jobs (ids ${firstId}–${firstId + JOBS - 1}); every third sleeps forever and is cancelled after ${TIMEOUT_MS} ms`);

    let lastShown = '';
    let lastPrint = 0;
    const show = async (force: boolean): Promise<boolean> => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        `SELECT id, JSON_VALUE(payload, '$.object_id') AS object_id,
                IF(JSON_TYPE(JSON_EXTRACT(payload, '$.ms')) = 'NULL', NULL, JSON_VALUE(payload, '$.ms') * 1000000) AS sleep,
                status, LEFT(created_at, 19) AS created_at, LEFT(queued_at, 19) AS queued_at,
                LEFT(started_at, 19) AS started_at, LEFT(finished_at, 19) AS finished_at, LEFT(cancelled_at, 19) AS cancelled_at
         FROM jobs WHERE id >= ? AND id < ? ORDER BY id`,
        [firstId, firstId + JOBS],
      );
      const statuses = rows.map((r) => String(r.status)).join(',');
      const allFinal = rows.every((r) => ['done', 'failed', 'cancelled'].includes(String(r.status)));
      if ((statuses !== lastShown && Date.now() - lastPrint >= 1000) || force) {
        lastShown = statuses;
        lastPrint = Date.now();
        say(`\n${new Date().toISOString()}  ${summary(rows)}`);
        say(table(rows));
      }
      return allFinal;
    };
    await until(() => show(false), 5 * 60_000, exited, 250);
    await show(true);
    if (KEEP && DASHBOARD_PORT !== '0') {
      say(`\ndemo: every job is final. The daemon keeps running: open http://127.0.0.1:${DASHBOARD_PORT}/ — Ctrl-C stops it.`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    say('\ndemo: every job is final. Stopping the daemon (SIGTERM)…');
    daemon.kill('SIGTERM');
    const code = await exited;
    say(`demo: daemon exited with ${code}.`);
    return code;
  } finally {
    if (daemon.exitCode === null) daemon.kill('SIGTERM');
    await exited;
    await pool.end();
    await server?.destroy();
  }
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, exited: Promise<number>, intervalMs = 200): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // tables not created yet
    }
    if (gone) throw new Error('the daemon exited early; see its output above');
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function summary(rows: mysql.RowDataPacket[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(String(r.status), (counts.get(String(r.status)) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${s}: ${n}`).join('  ');
}

/** The classic layout: `| id | object_id | sleep | status | … |`, final statuses shouted. */
function table(rows: mysql.RowDataPacket[]): string {
  const cell = (r: mysql.RowDataPacket, c: (typeof COLUMNS)[number]): string => {
    const v = r[c] as string | number | null;
    if (c === 'status') return ['done', 'cancelled', 'failed'].includes(String(v)) ? `${String(v).toUpperCase()}!` : String(v).toUpperCase();
    if (c === 'sleep' && v !== null) return String(Math.round(Number(v)));
    return v === null ? 'NULL' : String(v);
  };
  const lines = [COLUMNS as readonly string[], ...rows.map((r) => COLUMNS.map((c) => cell(r, c)))];
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => `| ${l.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`).join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
