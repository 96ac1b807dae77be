// One backoff for a failed attempt, whoever records it: the runner computes it in TS
// (retryDelayMs), the leader's rescue of a dead replica's run in SQL (retryDelaySql).
// Both must give the same range for every attempt, checked here on the server itself.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { RETRY_MAX_MS, retryDelayMs, retryDelaySql } from '../../src/backoff.js';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;

/** Draws per attempt: enough that the range is covered, each half of it at least once. */
const DRAWS = 200;

describe('retry backoff: the TS and SQL forms agree', () => {
  before(async () => {
    fresh = await freshDatabase('backoff_sql');
    pool = fresh.pool;
  });
  after(async () => {
    await fresh?.drop();
  });

  it('attempts 1..15 fall in the same range, jittered across it, capped at the same hour', async () => {
    const [rows] = await pool.query<mysql.RowDataPacket[]>(
      `SELECT d.attempt, MIN(d.ms) AS lo, MAX(d.ms) AS hi, SUM(d.ms = ROUND(d.ms)) AS whole
       FROM (SELECT a.seq AS attempt, ${retryDelaySql('a.seq')} AS ms FROM seq_1_to_15 a, seq_1_to_${DRAWS} s) d
       GROUP BY d.attempt ORDER BY d.attempt`,
    );
    assert.equal(rows.length, 15);
    for (const r of rows) {
      const attempt = Number(r.attempt);
      const low = retryDelayMs(attempt, { random: () => 0 });
      const high = retryDelayMs(attempt, { random: () => 1 });
      const [lo, hi] = [Number(r.lo), Number(r.hi)];
      assert.ok(lo >= low && hi <= high, `attempt ${attempt}: SQL ${lo}–${hi} ms within TS ${low}–${high} ms`);
      assert.equal(Number(r.whole), DRAWS, `attempt ${attempt}: whole ms, as retryDelayMs`);
      if (low === high) {
        assert.equal(low, RETRY_MAX_MS);
        assert.equal(lo, RETRY_MAX_MS, `attempt ${attempt}: capped`);
      } else {
        const mid = (low + high) / 2;
        assert.ok(lo < mid && hi > mid, `attempt ${attempt}: jitter spans the range (${lo}–${hi} ms of ${low}–${high})`);
      }
    }
  });

  it('the exponent is capped before POW: a huge attempts value stays an hour, not an overflow', async () => {
    const [rows] = await pool.query<mysql.RowDataPacket[]>(`SELECT ${retryDelaySql('2147483647')} AS ms`);
    assert.equal(Number(rows[0]?.ms), RETRY_MAX_MS);
    assert.equal(retryDelayMs(2147483647), RETRY_MAX_MS);
  });
});
