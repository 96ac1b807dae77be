import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { defaultLockName, MysqlLockLeader, type MysqlLockLeaderOptions } from '../../src/leader/mysql-lock-leader.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { changes, watchLeaders } from '../helpers/leaders.js';

/** TEST_LOG=debug shows the leaders' logs. */
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });

/** Polls `check` every 10 ms until it holds; fails naming `what` after `timeoutMs`. */
function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<true> {
  return waitFor(async () => (await check()) || undefined, { timeoutMs, intervalMs: 10, message: what });
}

void describe('MysqlLockLeader against the real server', () => {
  let db: FreshDatabase;
  let observer: Connection;
  const running: MysqlLockLeader[] = [];
  const databases: FreshDatabase[] = [];
  let counter = 0;
  // Lock names are server-wide: the database's own name keeps them apart from other files'.
  const uniqueLockName = (): string => `sluice-test-${db.name}-${++counter}`;

  function candidate(
    lockName: string | undefined,
    connection: MysqlLockLeaderOptions['connection'] = db.url,
    timing = { renewIntervalMs: 100, maxBackoffMs: 400 },
  ): MysqlLockLeader {
    const leader = new MysqlLockLeader({ connection, lockName, ...timing, logger });
    running.push(leader);
    return leader;
  }


  /** The connection id holding `name` (IS_USED_LOCK), or null when it is free. */
  async function holderOf(name: string): Promise<number | null> {
    const [rows] = await observer.query<RowDataPacket[]>('SELECT IS_USED_LOCK(?) AS holder', [name]);
    return (rows[0]?.holder as number | null | undefined) ?? null;
  }

  before(async () => {
    db = await freshDatabase('lock_leader');
    observer = await createConnection(db.url);
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((leader) => leader.stop()));
  });

  after(async () => {
    await observer?.end();
    for (const extra of databases) await extra.drop();
    await db?.drop();
  });

  void test('exactly one of two candidates leads', async () => {
    const name = uniqueLockName();
    const a = candidate(name);
    const b = candidate(name);
    const watch = watchLeaders([a, b]);
    await Promise.all([a.start(), b.start()]);
    await until('a leader', () => a.isLeader() || b.isLeader());
    const follower = a.isLeader() ? b : a;

    // The follower keeps trying and keeps failing while the leader's session holds the lock.
    for (let i = 0; i < 3; i++) assert.deepEqual(await follower.runOnce(), { action: 'busy', leader: false });
    assert.equal(a.isLeader() !== b.isLeader(), true, 'exactly one leader');
    assert.equal(watch.mostAtOnce(), 1, 'never two leaders at once');
    assert.notEqual(await holderOf(name), null, 'the lock is held on the server');
  });

  void test('the follower takes over once the leader stops, and stop() released the lock', async () => {
    const name = uniqueLockName();
    const a = candidate(name);
    await a.start();
    assert.equal(a.isLeader(), true);
    const b = candidate(name);
    const seenA = changes(a);
    await b.start();
    assert.equal(b.isLeader(), false);
    const heldByA = await holderOf(name);
    assert.notEqual(heldByA, null);

    await a.stop();
    await a.stop(); // safe twice
    assert.equal(a.isLeader(), false);
    assert.deepEqual(seenA, [false]);
    assert.notEqual(await holderOf(name), heldByA, 'released: a no longer holds it once stop() resolves');

    await until('b to take over', () => b.isLeader());
    const heldByB = await holderOf(name);
    assert.notEqual(heldByB, null);
    assert.notEqual(heldByB, heldByA);
  });

  void test("a killed leader connection ends its leadership at once; the other takes over; it reconnects", async () => {
    const name = uniqueLockName();
    // a's own rounds are 4 s apart: only the connection's error event can end it sooner.
    const a = candidate(name, db.url, { renewIntervalMs: 4_000, maxBackoffMs: 4_000 });
    await a.start();
    const b = candidate(name);
    await b.start();
    assert.equal(a.isLeader(), true);
    assert.equal(b.isLeader(), false);
    const seenA = changes(a);

    const killed = await holderOf(name);
    assert.ok(killed !== null);
    await observer.query(`KILL ${Number(killed)}`);

    await until('a to notice, well before its next round', () => !a.isLeader(), 3_000);
    assert.deepEqual(seenA, [false], 'onChange(false) fired');
    await until('b to take over', () => b.isLeader());
    const holder = await holderOf(name);
    assert.notEqual(holder, null);
    assert.notEqual(holder, killed);
    assert.equal(a.isLeader(), false, 'one leader');

    // a reconnects with backoff and is the one left to lead once b goes away.
    await b.stop();
    await until('a to lead again on a new connection (a 3-5 s backoff, then 4-4.8 s rounds)', () => a.isLeader(), 20_000);
    assert.notEqual(await holderOf(name), killed);
    assert.deepEqual(seenA, [false, true]);
  });

  void test('the default lock name is per database, so two databases elect two leaders', async () => {
    const dbs = [await freshDatabase('lock_leader_one'), await freshDatabase('lock_leader_two')];
    databases.push(...dbs);
    const [one, two] = dbs.map((database) => candidate(undefined, database.url));
    assert.ok(one && two);
    await Promise.all([one.start(), two.start()]);
    assert.equal(one.name, `sluice-leader:${dbs[0]?.name}`);
    assert.equal(two.name, `sluice-leader:${dbs[1]?.name}`);
    assert.equal(one.isLeader(), true);
    assert.equal(two.isLeader(), true);
  });

  void test('lock names stay within MySQL’s 64 characters', () => {
    const long = defaultLockName('d'.repeat(64));
    assert.ok(long.length <= 64, long);
    assert.notEqual(long, defaultLockName(`${'d'.repeat(63)}e`), 'still distinct');
    assert.equal(defaultLockName('test'), 'sluice-leader:test');
  });
});
