// The throwaway server used by the demo and the outage tests: start, query, kill,
// restart on the same port with the data intact, destroy.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import mysql from 'mysql2/promise';
import { LocalMysqlServer } from '../../scripts/local-mysql.js';

let server: LocalMysqlServer | undefined;
after(async () => {
  await server?.destroy();
});

function connect(s: LocalMysqlServer): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: s.url, connectTimeout: 2000 });
}

void test('a private server starts, survives kill -9 with its data, and is removed', { timeout: 60_000 }, async (t) => {
  const started = Date.now();
  server = await LocalMysqlServer.start({ database: 'local_mysql_test' });
  t.diagnostic(`private server started in ${Date.now() - started} ms on port ${server.port}`);
  assert.match(server.url, /^mysql:\/\/root@127\.0\.0\.1:\d+\/local_mysql_test$/);
  assert.ok(existsSync(server.dataDir));
  const port = server.port;

  let conn = await connect(server);
  await conn.query('CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB');
  await conn.query("INSERT INTO kept VALUES (1, 'before the kill')");
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT 1 + 1 AS two');
  assert.equal(rows[0]?.two, 2);
  await conn.end();

  await server.kill();
  assert.equal(server.running, false);
  await assert.rejects(connect(server), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ECONNREFUSED');
    return true;
  });

  const restarted = Date.now();
  await server.restart();
  t.diagnostic(`restarted after SIGKILL in ${Date.now() - restarted} ms`);
  assert.equal(server.port, port);
  conn = await connect(server);
  const [kept] = await conn.query<mysql.RowDataPacket[]>('SELECT note FROM kept WHERE id = 1');
  assert.equal(kept[0]?.note, 'before the kill');
  await conn.end();

  const { tempDir } = server;
  await server.destroy();
  assert.equal(server.running, false);
  assert.equal(existsSync(tempDir), false);
  server = undefined;
});
