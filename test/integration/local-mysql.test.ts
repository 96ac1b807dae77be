// The database the scripts and the tests use (scripts/local-mysql/database-url.ts):
// DATABASE_URL, else 127.0.0.1:3306, else a throwaway private server, which starts,
// survives kill -9 with its data, restarts on the same port, and is removed.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { resolveDatabaseServer, resolveDatabaseUrl } from '../../scripts/local-mysql/database-url.js';
import { connectAsRoot, freePort, type LocalMysqlServer } from '../../scripts/local-mysql/server.js';

function connect(url: string): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: url, connectTimeout: 2000 });
}

describe('the database resolver', () => {
  const savedUrl = process.env.DATABASE_URL;
  let server: LocalMysqlServer | undefined;
  after(async () => {
    await server?.destroy();
    if (savedUrl === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedUrl;
  });

  it('takes DATABASE_URL first: its server for the tests, the URL as it is for a script', async () => {
    process.env.DATABASE_URL = 'mysql://app:secret@db.example:3307/jobs';
    assert.deepEqual(await resolveDatabaseServer(), { url: 'mysql://app:secret@db.example:3307/', source: 'DATABASE_URL' });
    assert.deepEqual(await resolveDatabaseUrl(), { url: 'mysql://app:secret@db.example:3307/jobs' });
  });

  it('else the server on 127.0.0.1:3306, where a script gets its database created', async (t) => {
    delete process.env.DATABASE_URL;
    const shared = await connectAsRoot(3306).catch(() => undefined);
    if (!shared) return t.skip('nothing answers on 127.0.0.1:3306');
    try {
      const lines: string[] = [];
      assert.deepEqual(await resolveDatabaseServer(), { url: 'mysql://root@127.0.0.1:3306/', source: 'shared' });
      const { url, server: started } = await resolveDatabaseUrl((line) => lines.push(line), 'local_mysql_resolver');
      assert.equal(url, 'mysql://root@127.0.0.1:3306/local_mysql_resolver');
      assert.equal(started, undefined, 'no private server');
      assert.match(lines.join('\n'), /using the server on 127\.0\.0\.1:3306, database local_mysql_resolver/);
      const [rows] = await shared.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', ['local_mysql_resolver']);
      assert.equal(rows.length, 1, 'the database was created');
    } finally {
      await shared.query('DROP DATABASE IF EXISTS local_mysql_resolver');
      await shared.end();
    }
  });

  it('else a private server, which survives kill -9 with its data and is removed', { timeout: 90_000 }, async (t) => {
    delete process.env.DATABASE_URL;
    const lines: string[] = [];
    const started = Date.now();
    const resolved = await resolveDatabaseServer({ log: (line) => lines.push(line), sharedPort: await freePort() });
    server = resolved.server;
    assert.ok(server, 'a private server was started');
    t.diagnostic(`private server started in ${Date.now() - started} ms on port ${server.port}`);
    assert.equal(resolved.source, 'private');
    assert.equal(resolved.url, `mysql://root@127.0.0.1:${server.port}/`);
    assert.match(server.url, /^mysql:\/\/root@127\.0\.0\.1:\d+\/sluice$/);
    assert.match(lines.join('\n'), /starting a throwaway local server[\s\S]*local server ready on port \d+/);
    assert.ok(existsSync(server.dataDir));
    const port = server.port;

    let conn = await connect(server.url);
    await conn.query('CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB');
    await conn.query("INSERT INTO kept VALUES (1, 'before the kill')");
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT 1 + 1 AS two');
    assert.equal(rows[0]?.two, 2);
    await conn.end();

    await server.kill();
    assert.equal(server.running, false);
    await assert.rejects(connect(server.url), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });

    const restarted = Date.now();
    await server.restart();
    t.diagnostic(`restarted after SIGKILL in ${Date.now() - restarted} ms`);
    assert.equal(server.port, port);
    conn = await connect(server.url);
    const [kept] = await conn.query<mysql.RowDataPacket[]>('SELECT note FROM kept WHERE id = 1');
    assert.equal(kept[0]?.note, 'before the kill');
    await conn.end();

    const { tempDir } = server;
    await server.destroy();
    assert.equal(server.running, false);
    assert.equal(existsSync(tempDir), false);
    server = undefined;
  });
});
