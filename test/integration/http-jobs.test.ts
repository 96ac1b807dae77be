import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import type { Daemon } from '../../src/daemon.js';
import { closeFixtures, startDaemon, testEnv } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { getJob, insertJob, type JobRow } from '../helpers/factory.js';

let fresh: FreshDatabase;
let pool: mysql.Pool;
let daemon: Daemon;
let service: Server;
let outsider: Server;
let base: string;
let outsiderBase: string;
const seen: Array<{ path: string; key: string | undefined; body: string }> = [];
const outsiderSeen: string[] = [];
let slowClosed = false;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  return body;
}

async function settled(id: number, statuses: string[], timeoutMs = 10_000): Promise<JobRow> {
  return waitFor(async () => {
    const job = await getJob(pool, id);
    return statuses.includes(job.status) && job.attempts > 0 ? job : undefined;
  }, { timeoutMs, message: `job ${id} never reached ${statuses.join('/')}` });
}

describe('http jobs end to end: a row calls a real service, the outcome lands in the row', () => {
  before(async () => {
    service = createServer((req, res) => {
      void bodyOf(req).then((body) => {
        seen.push({ path: req.url ?? '', key: req.headers['idempotency-key'] as string | undefined, body });
        if (req.url === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        else if (req.url === '/fail') res.writeHead(500).end('boom');
        else if (req.url === '/busy') res.writeHead(429, { 'retry-after': '30' }).end('slow down');
        else if (req.url === '/missing') res.writeHead(404).end('no such thing');
        else if (req.url === '/surrogate') res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":"\\ud800","ok":true}');
        else if (req.url === '/away') res.writeHead(302, { location: `${outsiderBase}/x` }).end();
        else if (req.url === '/slow') req.socket.once('close', () => (slowClosed = true));
        else res.writeHead(400).end();
      });
    });
    outsider = createServer((req, res) => {
      outsiderSeen.push(req.url ?? '');
      res.end('should never be called');
    });
    base = await listen(service);
    outsiderBase = await listen(outsider);
    fresh = await freshDatabase('http_jobs');
    pool = fresh.pool;
    // localhost is allowed by name: it resolves to loopback, so the handler must still refuse it.
    daemon = await startDaemon(testEnv(fresh.url, { SLUICE_HTTP_ALLOW: `${new URL(base).host},localhost:${new URL(base).port}` }));
  });
  after(async () => {
    await daemon?.stop();
    await closeFixtures();
    await fresh?.drop();
    service?.closeAllConnections();
    service?.close();
    outsider?.close();
  });

  it('2xx → done, the JSON body is the result, the job id is the Idempotency-Key', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/ok`, body: { n: 1 } } });
    const job = await settled(id, ['done']);
    assert.deepEqual(job.result, { ok: true });
    const call = seen.find((s) => s.path === '/ok');
    assert.equal(call?.key, String(id));
    assert.equal(call?.body, '{"n":1}');
  });

  it('5xx → a failed attempt retried with backoff, then failed when attempts run out', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/fail` }, maxAttempts: 2 });
    const retry = await settled(id, ['pending']);
    assert.equal(retry.attempts, 1);
    assert.match(retry.error ?? '', /HTTP 500/);
    assert.ok(retry.run_at > retry.started_at!, 'run_at moved by the backoff');
    const failed = await settled(id, ['failed'], 15_000);
    assert.equal(failed.attempts, 2);
    assert.equal(seen.filter((s) => s.path === '/fail').length, 2);
  });

  it('429 with Retry-After moves run_at at least that far', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/busy` } });
    await settled(id, ['pending']);
    const [[row]] = (await pool.query('SELECT TIMESTAMPDIFF(SECOND, NOW(3), run_at) AS s, error FROM jobs WHERE id = ?', [id])) as unknown as [
      [{ s: number; error: string }],
    ];
    assert.ok(Number(row.s) >= 28 && Number(row.s) <= 31, `run_at ${row.s}s ahead`);
    assert.match(row.error, /HTTP 429/);
  });

  it('other 4xx → failed at once, status and excerpt in error', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/missing` }, maxAttempts: 5 });
    const job = await settled(id, ['failed']);
    assert.equal(job.attempts, 1);
    assert.match(job.error ?? '', /HTTP 404.*no such thing/);
  });

  it('a lone surrogate in a JSON response still lands: done, stored as U+FFFD', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/surrogate` } });
    const job = await settled(id, ['done', 'failed']);
    assert.equal(job.status, 'done', `error: ${job.error}`);
    assert.deepEqual(job.result, { a: '\ufffd', ok: true });
  });

  it('an allowed name that resolves to loopback fails the job at once, naming host:port and class only', async () => {
    const port = new URL(base).port;
    const id = await insertJob(pool, { type: 'http', payload: { url: `http://localhost:${port}/ok?token=t-secret` }, maxAttempts: 5 });
    const job = await settled(id, ['failed']);
    assert.equal(job.attempts, 1, 'permanent: not retried');
    assert.match(job.error ?? '', new RegExp(`localhost:${port}: refused: .*loopback address`));
    assert.ok(!(job.error ?? '').includes('t-secret'), job.error ?? '');
    assert.ok(!seen.some((s) => s.path.includes('t-secret')), 'the service never saw the request');
  });

  it('a host not in SLUICE_HTTP_ALLOW fails the job without a request', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${outsiderBase}/direct` } });
    const job = await settled(id, ['failed']);
    assert.match(job.error ?? '', /SLUICE_HTTP_ALLOW/);
    assert.deepEqual(outsiderSeen, []);
  });

  it('a redirect to a host not allowed fails the job; that host sees nothing', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/away` } });
    const job = await settled(id, ['failed']);
    assert.match(job.error ?? '', /redirect/i);
    assert.deepEqual(outsiderSeen, []);
  });

  it('cancel during a slow response aborts the request and cancels the job', async () => {
    const id = await insertJob(pool, { type: 'http', payload: { url: `${base}/slow` } });
    await waitFor(() => Promise.resolve(seen.some((s) => s.path === '/slow')));
    await pool.query('UPDATE jobs SET cancel_requested_at = NOW(3) WHERE id = ?', [id]);
    const job = await settled(id, ['cancelled'], 5000);
    assert.match(job.error ?? '', /cancelled while running/);
    await waitFor(() => Promise.resolve(slowClosed), { message: 'the service saw the connection close' });
  });
});
