// The built-in `http` handler against real HTTP servers on 127.0.0.1.
// Run: node --import tsx --test test/integration/http-handler.test.ts
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { PermanentJobError, RetryAfterError } from '../../src/errors.js';
import { createHttpHandler, MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../src/handlers/http.js';
import { parseAllowList } from '../../src/handlers/http-allow-list.js';
import type { JobContext, JobInfo } from '../../src/handlers/types.js';

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  readonly port: number;
  readonly host: string;
  readonly url: string;
  /** Every request that reached the handler, body read in full. */
  readonly requests: Seen[];
  /** TCP connections accepted: 0 proves no request was even attempted. */
  connections: number;
}

/** Self-signed for 127.0.0.1 and localhost; the handler trusts it through its `ca` option. */
const TLS = {
  cert: readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url), 'utf8'),
  key: readFileSync(new URL('../fixtures/tls/key.pem', import.meta.url), 'utf8'),
};

const servers: Array<ReturnType<typeof createServer> | ReturnType<typeof createTlsServer>> = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

/** A server whose `respond` sees each request after its body has been read; https with `tls`. */
async function serve(respond: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void, tls?: typeof TLS): Promise<TestServer> {
  const requests: Seen[] = [];
  const listener: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(seen);
      respond(req, res, seen);
    });
  };
  const server = tls ? createTlsServer(tls, listener) : createServer(listener);
  servers.push(server);
  const ts: TestServer = { port: 0, host: '', url: '', requests, connections: 0 };
  server.on('connection', () => ts.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(ts, { port, host: `127.0.0.1:${port}`, url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}` });
}

function reply(status: number, body: string, headers: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, headers).end(body);
  };
}

function job(payload: unknown, id = 42): JobInfo {
  return { id, queue: 'default', type: 'http', payload, attempt: 1, maxAttempts: 5, resumed: false, childCount: 0 };
}

function context(controller = new AbortController(), log = pino({ level: 'silent' })): JobContext {
  return {
    signal: controller.signal,
    progress: () => undefined,
    log,
    children: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }) }),
    enqueue: () => Promise.reject(new Error('not in this test')),
  };
}

/** Rejects with the handler's error, or fails the test when the handler resolved. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error, `rejected with a non-Error: ${String(err)}`);
    return err;
  }
  assert.fail('handler resolved but should have failed');
}

function assertRetryable(err: Error): void {
  assert.ok(!(err instanceof PermanentJobError), `expected a retryable error, got PermanentJobError: ${err.message}`);
}

void describe('2xx results', () => {
  void test('JSON response is returned parsed', async () => {
    const s = await serve(reply(200, '{"ok":true,"n":[1,2]}', { 'content-type': 'application/json; charset=utf-8' }));
    const result = await createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: `${s.url}/hook` }), context());
    assert.deepEqual(result, { ok: true, n: [1, 2] });
    assert.equal(s.requests[0]?.method, 'POST', 'POST is the default method');
    assert.equal(s.requests[0]?.path, '/hook');
  });

  void test('text response is returned as a string; JSON-looking text stays text', async () => {
    const s = await serve(reply(201, '{"not":"parsed"}', { 'content-type': 'text/plain' }));
    const result = await createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context());
    assert.equal(result, '{"not":"parsed"}');
  });

  void test('empty 204 response is null', async () => {
    const s = await serve(reply(204, ''));
    assert.equal(await createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()), null);
  });

  void test('a body over maxResultBytes is cut and marked truncated, JSON or not', async () => {
    const s = await serve(reply(200, JSON.stringify({ data: 'x'.repeat(500) }), { 'content-type': 'application/json' }));
    const result = await createHttpHandler({ allow: ['127.0.0.1'], maxResultBytes: 20 })(job({ url: s.url }), context());
    assert.deepEqual(result, { truncated: true, body: '{"data":"xxxxxxxxxxx' });
  });

  void test('truncation never splits a UTF-8 character', async () => {
    const s = await serve(reply(200, 'ééé', { 'content-type': 'text/plain; charset=utf-8' })); // 6 bytes
    const result = await createHttpHandler({ allow: ['127.0.0.1'], maxResultBytes: 3 })(job({ url: s.url }), context());
    assert.deepEqual(result, { truncated: true, body: 'é' });
  });

  void test('a body of exactly maxResultBytes is not truncated', async () => {
    const s = await serve(reply(200, 'abcde'));
    const result = await createHttpHandler({ allow: ['127.0.0.1'], maxResultBytes: 5 })(job({ url: s.url }), context());
    assert.equal(result, 'abcde');
  });
});

void describe('error statuses', () => {
  void test('500 is a retryable error with status and body excerpt', async () => {
    const s = await serve(reply(500, 'database is down'));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assertRetryable(err);
    assert.ok(!(err instanceof RetryAfterError));
    assert.match(err.message, /HTTP 500/);
    assert.match(err.message, /database is down/);
  });

  void test('429 with Retry-After seconds is a RetryAfterError of that many ms', async () => {
    const s = await serve(reply(429, 'slow down', { 'retry-after': '7' }));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assert.ok(err instanceof RetryAfterError, `got ${err.name}: ${err.message}`);
    assert.equal(err.retryAfterMs, 7000);
    assert.match(err.message, /HTTP 429.*slow down/);
  });

  void test('503 with an HTTP-date Retry-After waits until that date', async () => {
    const at = new Date(Date.now() + 120_000).toUTCString(); // second precision: 119–120 s away
    const s = await serve(reply(503, 'maintenance', { 'retry-after': at }));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assert.ok(err instanceof RetryAfterError, `got ${err.name}: ${err.message}`);
    assert.ok(err.retryAfterMs > 115_000 && err.retryAfterMs <= 120_000, `retryAfterMs ${err.retryAfterMs}`);
    assert.match(err.message, /HTTP 503/);
  });

  void test('Retry-After is capped at one hour', async () => {
    const s = await serve(reply(429, '', { 'retry-after': '86400' }));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assert.ok(err instanceof RetryAfterError);
    assert.equal(err.retryAfterMs, MAX_RETRY_AFTER_MS);
    assert.equal(MAX_RETRY_AFTER_MS, 3_600_000);
  });

  void test('429 without Retry-After is a plain retryable error', async () => {
    const s = await serve(reply(429, 'busy'));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assertRetryable(err);
    assert.ok(!(err instanceof RetryAfterError));
    assert.match(err.message, /HTTP 429/);
  });

  void test('404 is permanent, with status and a body excerpt of at most 200 characters', async () => {
    const s = await serve(reply(404, `no such widget ${'x'.repeat(1000)}`));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
    assert.match(err.message, /HTTP 404 Not Found/);
    assert.match(err.message, /no such widget x+/);
    const excerpt = err.message.slice(err.message.indexOf('no such widget'));
    assert.ok(excerpt.length <= 200, `excerpt is ${excerpt.length} characters`);
  });

  void test('network error (nothing listening) is retryable', async () => {
    const s = await serve(reply(200, ''));
    const closed = servers.pop();
    closed?.close();
    if (closed) await once(closed, 'close');
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()));
    assertRetryable(err);
    assert.match(err.message, /ECONNREFUSED/);
  });

  void test('timeout_ms elapsed is a retryable error', async () => {
    const s = await serve(() => undefined); // never answers
    const ctx = context();
    const started = Date.now();
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url, timeout_ms: 150 }), ctx));
    assertRetryable(err);
    assert.match(err.message, /timeout_ms=150/);
    assert.ok(Date.now() - started < 5_000, 'timed out promptly');
    assert.equal(ctx.signal.aborted, false, 'the job signal is untouched by a request timeout');
  });
});

void describe('allow list', () => {
  void test('a host not in the list is refused before any connection', async () => {
    const s = await serve(reply(200, 'should not be reached'));
    const err = await failure(createHttpHandler({ allow: ['api.internal'] })(job({ url: s.url }), context()));
    assert.ok(err instanceof PermanentJobError);
    assert.match(err.message, /127\.0\.0\.1:\d+ is not in SLUICE_HTTP_ALLOW/);
    assert.equal(s.requests.length, 0);
    assert.equal(s.connections, 0);
  });

  void test('an entry without a port allows any port; with a port, only that port', async () => {
    const s = await serve(reply(200, 'hi'));
    assert.equal(await createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context()), 'hi');
    assert.equal(await createHttpHandler({ allow: [s.host] })(job({ url: s.url }), context()), 'hi');
    const otherPort = s.port === 1 ? 2 : 1;
    const err = await failure(createHttpHandler({ allow: [`127.0.0.1:${otherPort}`] })(job({ url: s.url }), context()));
    assert.ok(err instanceof PermanentJobError);
    assert.match(err.message, /SLUICE_HTTP_ALLOW/);
    assert.equal(s.requests.length, 2, 'only the two allowed calls arrived');
  });

  void test('a port entry matches the scheme default port', async () => {
    const err = await failure(createHttpHandler({ allow: ['example.test:443'] })(job({ url: 'http://example.test/' }), context()));
    assert.ok(err instanceof PermanentJobError);
    assert.match(err.message, /example\.test:80 is not in SLUICE_HTTP_ALLOW/);
  });

  void test('a bad allow entry is refused when the handler is created', () => {
    assert.throws(() => createHttpHandler({ allow: ['http://x'] }), /SLUICE_HTTP_ALLOW/);
  });
});

void describe('addresses, checked on the connection itself', () => {
  void test('a name that resolves to loopback (localhost) is refused: permanent, names host:port and class, no connection', async () => {
    const s = await serve(reply(200, 'should not be reached'));
    const err = await failure(
      createHttpHandler({ allow: [`localhost:${s.port}`] })(
        job({ url: `http://localhost:${s.port}/p-secret?token=q-secret`, headers: { authorization: 'Bearer h-secret' } }),
        context(),
      ),
    );
    assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
    assert.match(err.message, new RegExp(`^POST localhost:${s.port}: refused: localhost resolves to (127\\.0\\.0\\.1|::1), a loopback address`));
    for (const secret of ['p-secret', 'q-secret', 'h-secret']) assert.ok(!err.message.includes(secret), err.message);
    assert.equal(s.connections, 0);
  });

  void test('the same server, called by the IP literal that the allow list names, is reached', async () => {
    const s = await serve(reply(200, 'hi'));
    assert.equal(await createHttpHandler({ allow: [`127.0.0.1:${s.port}`] })(job({ url: `http://127.0.0.1:${s.port}/` }), context()), 'hi');
    assert.equal(s.requests.length, 1);
  });

  void test('a redirect to a name that resolves to loopback is refused at connect time', async () => {
    const inner = await serve(reply(200, 'should not be reached'));
    const s = await serve(reply(307, '', { location: `http://localhost:${inner.port}/admin` }));
    const err = await failure(createHttpHandler({ allow: [s.host, `localhost:${inner.port}`] })(job({ url: s.url }), context()));
    assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
    assert.match(err.message, new RegExp(`POST localhost:${inner.port}: refused: .*loopback`));
    assert.ok(!err.message.includes('/admin'), err.message);
    assert.equal(inner.connections, 0);
    assert.equal(s.requests.length, 1);
  });

  void test('a broad CIDR entry never opens loopback to a name; an entry of that one address does', async () => {
    const s = await serve(reply(200, 'hi'));
    const call = (allow: string[]): Promise<unknown> => createHttpHandler({ allow })(job({ url: `http://localhost:${s.port}/` }), context());
    for (const broad of [['127.0.0.0/8', '::/0'], ['0.0.0.0/0', '::/0']]) {
      const err = await failure(call([`localhost:${s.port}`, ...broad]));
      assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
      assert.match(err.message, /a loopback address, which a host name reaches only through a CIDR entry in SLUICE_HTTP_ALLOW of that one address/);
    }
    assert.equal(s.connections, 0);
    // Both loopback addresses, whichever localhost resolves to here (127.0.0.1, ::1 or both).
    assert.equal(await call([`localhost:${s.port}`, '127.0.0.1/32', '::1/128']), 'hi');
    assert.equal(s.requests.length, 1);
  });

  void test('an IP-literal URL passes through a CIDR entry that holds it, but loopback only through a single-address one', async () => {
    const s = await serve(reply(200, 'hi'));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.0/8', '0.0.0.0/0'] })(job({ url: s.url }), context()));
    assert.ok(err instanceof PermanentJobError);
    assert.match(err.message, /127\.0\.0\.1:\d+ is not in SLUICE_HTTP_ALLOW/);
    assert.equal(s.connections, 0);
    assert.equal(await createHttpHandler({ allow: ['127.0.0.1/32'] })(job({ url: s.url }), context()), 'hi');
  });

  void test('an IP literal entry matches however it is written', () => {
    const allowList = parseAllowList(['[::FFFF:127.0.0.1]:8080', '127.1']);
    assert.ok(allowList.allows(new URL('http://[::ffff:7f00:1]:8080/')));
    assert.ok(allowList.allows(new URL('http://127.0.0.1:9/')));
    assert.ok(!allowList.allows(new URL('http://[::1]:8080/')));
  });
});

void describe('results the database can store', () => {
  void test('lone surrogates in a JSON response become U+FFFD, in values and keys, at any depth', async () => {
    const body = '{"a":"\\ud800","\\udc00k":["x\\ud800y",{"b":"\\udfff"}],"pair":"\\ud83d\\ude00"}';
    const s = await serve(reply(200, body, { 'content-type': 'application/json' }));
    const result = await createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context());
    assert.deepEqual(result, { a: '\ufffd', '\ufffdk': ['x\ufffdy', { b: '\ufffd' }], pair: '😀' });
    assert.ok(JSON.stringify(result).isWellFormed());
  });

  void test('a JSON string response with a lone surrogate, and deep nesting, stay well-formed', async () => {
    const depth = 20_000;
    const deep = await serve(reply(200, `${'['.repeat(depth)}"\\udbff"${']'.repeat(depth)}`, { 'content-type': 'application/json' }));
    const top = await serve(reply(200, '"\\ud800!"', { 'content-type': 'application/json' }));
    const handler = createHttpHandler({ allow: ['127.0.0.1'], maxResultBytes: 1024 * 1024 });
    assert.equal(await handler(job({ url: top.url }), context()), '\ufffd!');
    let node = await handler(job({ url: deep.url }), context());
    for (let i = 0; i < depth; i++) node = (node as unknown[])[0];
    assert.equal(node, '\ufffd');
  });

  void test('Retry-After: cut to one hour, never negative, however far the date', () => {
    const now = Date.UTC(2026, 0, 1);
    assert.equal(parseRetryAfter('9'.repeat(400), now), MAX_RETRY_AFTER_MS);
    assert.equal(parseRetryAfter('Fri, 31 Dec 9999 23:59:59 GMT', now), MAX_RETRY_AFTER_MS);
    assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});

void describe('redirects', () => {
  void test('a redirect to a host not in the list is refused and never reached', async () => {
    const elsewhere = await serve(reply(200, 'should not be reached'));
    const s = await serve(reply(302, 'moved', { location: `${elsewhere.url}/x` }));
    const err = await failure(createHttpHandler({ allow: [s.host] })(job({ url: s.url }), context()));
    assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
    assert.match(err.message, /HTTP 302/);
    assert.match(err.message, new RegExp(`${elsewhere.host.replaceAll('.', '\\.')}, which is not in SLUICE_HTTP_ALLOW`));
    assert.equal(elsewhere.connections, 0);
  });

  void test('307 to another origin keeps method, body and Idempotency-Key, and none of the payload headers', async () => {
    const target = await serve(reply(200, '{"from":"target"}', { 'content-type': 'application/json' }));
    const s = await serve(reply(307, '', { location: `${target.url}/there` }));
    const sent = { Authorization: 'Bearer t', 'X-Api-Key': 'k-secret', 'X-Trace': 'abc', Cookie: 'session=s', Accept: 'application/json' };
    const result = await createHttpHandler({ allow: [s.host, target.host] })(
      job({ url: s.url, method: 'put', headers: sent, body: { a: 1 } }, 9),
      context(),
    );
    assert.deepEqual(result, { from: 'target' });
    const seen = target.requests[0];
    assert.equal(seen?.method, 'PUT');
    assert.equal(seen?.path, '/there');
    assert.equal(seen?.body, '{"a":1}');
    assert.equal(seen?.headers['idempotency-key'], '9');
    assert.equal(seen?.headers['content-type'], 'application/json', 'the body goes along, so does its type');
    for (const name of ['authorization', 'x-api-key', 'x-trace', 'cookie']) {
      assert.equal(seen?.headers[name], undefined, `${name} does not follow to another origin`);
    }
    assert.notEqual(seen?.headers.accept, 'application/json', "the payload's Accept stays behind too");
    for (const [name, value] of Object.entries(sent)) {
      assert.equal(s.requests[0]?.headers[name.toLowerCase()], value, `the first origin got ${name}`);
    }
  });

  void test('a redirect within the origin keeps the payload headers; the next origin sees none of them', async () => {
    const other = await serve(reply(200, 'there'));
    const s = await serve((req, res) => {
      if (req.url === '/start') res.writeHead(302, { location: '/same' }).end();
      else res.writeHead(302, { location: `${other.url}/x` }).end();
    });
    const result = await createHttpHandler({ allow: [s.host, other.host] })(
      job({ url: `${s.url}/start`, method: 'GET', headers: { 'X-Api-Key': 'k-secret', 'X-Trace': 'abc' } }, 77),
      context(),
    );
    assert.equal(result, 'there');
    const [start, same] = s.requests;
    assert.deepEqual([start?.headers['x-api-key'], same?.headers['x-api-key'], same?.headers['x-trace']], ['k-secret', 'k-secret', 'abc']);
    const far = other.requests[0];
    assert.equal(far?.headers['idempotency-key'], '77');
    assert.equal(far?.headers['x-api-key'], undefined);
    assert.equal(far?.headers['x-trace'], undefined);
  });

  void test('https → http is refused as a downgrade; the http server is never reached', async () => {
    const plain = await serve(reply(200, 'in clear'));
    const secure = await serve((req, res) => {
      if (req.url === '/ok') res.writeHead(200).end('secure');
      else res.writeHead(302, { location: `${plain.url}/x` }).end();
    }, TLS);
    const handler = createHttpHandler({ allow: [secure.host, plain.host], ca: TLS.cert });
    assert.equal(await handler(job({ url: `${secure.url}/ok`, method: 'GET' }), context()), 'secure', 'https itself works');
    const err = await failure(handler(job({ url: `${secure.url}/down`, method: 'GET' }), context()));
    assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
    assert.match(err.message, new RegExp(`HTTP 302 Found from GET ${secure.host.replaceAll('.', '\\.')} redirects from https to http`));
    assert.match(err.message, /downgrade/);
    assert.equal(plain.connections, 0);
  });

  void test('303 with a relative Location becomes a GET without body', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/start') res.writeHead(303, { location: '/done' }).end();
      else res.writeHead(200).end('done');
    });
    const result = await createHttpHandler({ allow: [s.host] })(job({ url: `${s.url}/start`, body: { a: 1 } }), context());
    assert.equal(result, 'done');
    assert.deepEqual(
      s.requests.map((r) => [r.method, r.path, r.body, r.headers['content-type']]),
      [
        ['POST', '/start', '{"a":1}', 'application/json'],
        ['GET', '/done', '', undefined],
      ],
    );
  });

  void test('more than 5 redirects fail the job', async () => {
    const s = await serve(reply(302, '', { location: '/again' }));
    const err = await failure(createHttpHandler({ allow: [s.host] })(job({ url: s.url, method: 'GET' }), context()));
    assert.ok(err instanceof PermanentJobError);
    assert.match(err.message, /more than 5 times/);
    assert.equal(s.requests.length, 6, 'the first request and 5 followed redirects');
  });
});

void describe('what is sent', () => {
  void test('Idempotency-Key is the job id, and the payload cannot set it', async () => {
    const s = await serve(reply(200, ''));
    await createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }, 12345), context());
    assert.equal(s.requests[0]?.headers['idempotency-key'], '12345');

    const err = await failure(
      createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url, headers: { 'IDEMPOTENCY-KEY': 'mine' } }), context()),
    );
    assert.ok(err instanceof PermanentJobError);
    assert.match(err.message, /payload\.headers.*IDEMPOTENCY-KEY/);
    assert.equal(s.requests.length, 1);
  });

  void test('only payload.body is sent, as JSON; no body when absent', async () => {
    const s = await serve(reply(200, ''));
    const handler = createHttpHandler({ allow: ['127.0.0.1'] });
    await handler(job({ url: s.url, method: 'PATCH', headers: { 'x-a': 'b' }, body: ['only', { me: null }], timeout_ms: 5000 }), context());
    await handler(job({ url: s.url }), context());
    await handler(job({ url: s.url, body: null }), context());
    const [withBody, without, nullBody] = s.requests;
    assert.equal(withBody?.method, 'PATCH');
    assert.equal(withBody?.body, '["only",{"me":null}]');
    assert.equal(withBody?.headers['content-type'], 'application/json');
    assert.equal(withBody?.headers['x-a'], 'b');
    assert.equal(without?.body, '');
    assert.equal(without?.headers['content-type'], undefined);
    assert.equal(nullBody?.body, 'null', 'a present null body is sent as JSON null');
  });

  void test('header values never reach the log; method, host and status do', async () => {
    const s = await serve(reply(200, 'ok'));
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ level: 'debug' }, sink);
    await createHttpHandler({ allow: ['127.0.0.1'] })(
      job({ url: `${s.url}/p?token=q-secret`, headers: { authorization: 'Bearer h-secret' } }),
      context(new AbortController(), log),
    );
    const text = lines.join('');
    assert.ok(!text.includes('h-secret') && !text.includes('q-secret'), text);
    const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    assert.equal(entry.method, 'POST');
    assert.equal(entry.host, s.host);
    assert.equal(entry.status, 200);
    assert.equal(typeof entry.duration_ms, 'number');
  });
});

void describe('cancel', () => {
  void test('aborting ctx.signal during a slow response rejects promptly and closes the connection', { timeout: 5_000 }, async () => {
    let closed!: Promise<unknown>;
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    const s = await serve((_req, res) => {
      closed = once(res, 'close');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part of a slow body'); // …and the rest never comes
      arrived();
    });
    const controller = new AbortController();
    const pending = createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context(controller));
    await requestArrived;
    const started = Date.now();
    controller.abort(new Error('job cancelled'));
    const err = await failure(pending);
    assert.ok(Date.now() - started < 1_000, `rejected after ${Date.now() - started} ms`);
    assert.match(err.message, /aborted \(job cancelled\)/);
    await closed; // hangs (and the test times out) if the client kept the connection open
  });

  void test('an already aborted signal makes no request', async () => {
    const s = await serve(reply(200, ''));
    const controller = new AbortController();
    controller.abort(new Error('shutdown'));
    const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: s.url }), context(controller)));
    assert.match(err.message, /aborted \(shutdown\)/);
    assert.equal(s.connections, 0);
  });
});

void describe('bad payloads fail permanently, naming the field', () => {
  const cases: [string, unknown, RegExp][] = [
    ['payload not an object', 'http://x', /payload must be a JSON object/],
    ['missing url', { method: 'GET' }, /payload\.url is required/],
    ['url not a string', { url: 5 }, /payload\.url must be a string/],
    ['relative url', { url: '/hook' }, /payload\.url is not an absolute URL/],
    ['ftp url', { url: 'ftp://127.0.0.1/x' }, /payload\.url must be http or https/],
    ['credentials in url', { url: 'http://u:p@127.0.0.1/' }, /payload\.url must not hold credentials/],
    ['bad method', { url: 'http://127.0.0.1/', method: 'FETCH' }, /payload\.method must be one of/],
    ['method not a string', { url: 'http://127.0.0.1/', method: 1 }, /payload\.method/],
    ['headers an array', { url: 'http://127.0.0.1/', headers: ['a'] }, /payload\.headers must be an object/],
    ['headers a string', { url: 'http://127.0.0.1/', headers: 'a: b' }, /payload\.headers must be an object/],
    ['header value a number', { url: 'http://127.0.0.1/', headers: { 'x-n': 1 } }, /payload\.headers\["x-n"\] must be a string/],
    ['header value with a newline', { url: 'http://127.0.0.1/', headers: { 'x-n': 'a\r\nb' } }, /payload\.headers\["x-n"\]/],
    ['bad header name', { url: 'http://127.0.0.1/', headers: { 'a b': 'c' } }, /payload\.headers has an invalid header name/],
    ['Host header', { url: 'http://127.0.0.1/', headers: { Host: 'evil' } }, /payload\.headers may not set "Host"/],
    ['timeout_ms zero', { url: 'http://127.0.0.1/', timeout_ms: 0 }, /payload\.timeout_ms/],
    ['timeout_ms fractional', { url: 'http://127.0.0.1/', timeout_ms: 1.5 }, /payload\.timeout_ms/],
    ['timeout_ms a string', { url: 'http://127.0.0.1/', timeout_ms: '100' }, /payload\.timeout_ms/],
    ['body with GET', { url: 'http://127.0.0.1/', method: 'GET', body: {} }, /payload\.body cannot be sent with GET/],
    ['unknown field', { url: 'http://127.0.0.1/', header: {} }, /unknown field\(s\) "header"/],
  ];
  for (const [name, payload, message] of cases) {
    void test(name, async () => {
      const err = await failure(createHttpHandler({ allow: ['127.0.0.1'] })(job(payload), context()));
      assert.ok(err instanceof PermanentJobError, `got ${err.name}: ${err.message}`);
      assert.match(err.message, message);
    });
  }

  void test('a secret header value is not echoed in the error', async () => {
    const err = await failure(
      createHttpHandler({ allow: ['127.0.0.1'] })(job({ url: 'http://127.0.0.1/', headers: { authorization: 'Bearer s3cret\n' } }), context()),
    );
    assert.ok(err instanceof PermanentJobError);
    assert.ok(!err.message.includes('s3cret'), err.message);
  });
});
