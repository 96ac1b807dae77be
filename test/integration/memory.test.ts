// Memory stays bounded whatever the rows hold (issue #11): before the fix, 50 jobs with
// 16 MB payloads killed a daemon capped at 256 MB heap in its first claim, and the restart
// did the same, forever, without using up an attempt.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { MAX_PAYLOAD_BYTES } from '../../src/limits.js';
import { spawnDaemon, testEnv, waitForWorker } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';

let db: FreshDatabase;
let pool: mysql.Pool;

/** Peak resident set size of a process, in MB (Linux). */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

describe('large payloads (real child process, heap capped as in the 256 Mi pod)', () => {
  before(async () => {
    db = await freshDatabase('memory');
    pool = db.pool;
  });
  after(async () => db?.drop());

  it('fails payloads over the limit, runs large ones under it, and peaks well below the cap', async () => {
    const daemon = spawnDaemon(
      testEnv(db.url, { SLUICE_WORKER_ID: 'mem', SLUICE_CONCURRENCY: '10', NODE_OPTIONS: '--max-old-space-size=256' }),
    );
    try {
      await waitForWorker(pool, 'mem');
      const [[packet]] = (await pool.query('SELECT @@max_allowed_packet AS n')) as unknown as [[{ n: number }]];
      // The largest payload the server accepts in one row (its packet limit), 50 times.
      const hugeChars = Math.min(16_000_000, Number(packet.n) - 1024 * 1024);
      assert.ok(hugeChars > MAX_PAYLOAD_BYTES, 'the huge payloads exceed the limit');
      await pool.query(
        "INSERT INTO jobs (type, payload) SELECT 'payloadSize', JSON_OBJECT('blob', REPEAT('x', ?)) FROM seq_1_to_50",
        [hugeChars],
      );
      // Under the limit but far above what a claim carries: read at start, a few at a time.
      await pool.query("INSERT INTO jobs (type, payload) SELECT 'payloadSize', JSON_OBJECT('blob', REPEAT('y', 4000000)) FROM seq_1_to_20");
      await pool.query("INSERT INTO jobs (type, payload) SELECT 'payloadSize', JSON_OBJECT('n', seq) FROM seq_1_to_200");

      await waitFor(
        async () => {
          const [r] = await pool.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM jobs WHERE status IN ('done', 'failed')");
          return Number(r[0]?.n) === 270;
        },
        { timeoutMs: 120_000, message: `every job final; daemon output:\n${daemon.output().slice(-2000)}` },
      );
      const peak = peakRssMb(daemon.proc.pid!);
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        'SELECT status, COUNT(*) n, MIN(error) e FROM jobs GROUP BY status ORDER BY status',
      );
      assert.deepEqual(
        rows.map((r) => [r.status, Number(r.n)]),
        [
          ['done', 220],
          ['failed', 50],
        ],
      );
      assert.match(String(rows[1]?.e), /payload is \d+ bytes, more than the 8388608-byte limit; no handler ran/);
      assert.equal(daemon.proc.exitCode, null, 'the daemon is still running');
      // Idle, the daemon holds ~135 MB (the Kubernetes client alone ~80); what the payload
      // budget lets in at once, and its garbage, stay under the Deployment's 384 Mi limit.
      assert.ok(peak < 320, `peak RSS ${peak.toFixed(0)} MB`);
      process.stdout.write(`# memory.test: peak RSS ${peak.toFixed(0)} MB\n`);
    } finally {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
  });
});
