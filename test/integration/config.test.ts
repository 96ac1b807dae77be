import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { spawnDaemon } from '../helpers/daemon.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  return [];
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({ POD_NAME: 'pod-a' });
    assert.equal(c.databaseUrl, 'mysql://root@127.0.0.1:3306/sluice');
    assert.deepEqual(c.queues, []);
    assert.equal(c.concurrency, 10);
    assert.equal(c.rate, 50);
    assert.equal(c.burst, 50);
    assert.equal(c.pollMs, 1000);
    assert.equal(c.jobTimeoutMs, 900_000);
    assert.equal(c.heartbeatMs, 5000);
    assert.equal(c.deadAfterMs, 30_000);
    assert.equal(c.shutdownGraceMs, 25_000);
    assert.equal(c.retentionHours, 168);
    assert.deepEqual(c.httpAllow, []);
    assert.equal(c.httpPort, 9090);
    assert.equal(c.workerId, 'pod-a');
    assert.equal(c.migrate, true);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.prefetch, 50, 'a second of starts at the rate');
  });

  it('prefetches a second of starts at the rate, two rounds of slots at least, 2000 at most', () => {
    assert.equal(loadConfig({ SLUICE_CONCURRENCY: '100', SLUICE_RATE: '20' }).prefetch, 200);
    assert.equal(loadConfig({ SLUICE_CONCURRENCY: '50', SLUICE_RATE: '1500' }).prefetch, 1500);
    assert.equal(loadConfig({ SLUICE_CONCURRENCY: '50', SLUICE_RATE: '1000000' }).prefetch, 2000);
    assert.equal(loadConfig({ SLUICE_RATE: '1000000', SLUICE_PREFETCH: '5000' }).prefetch, 5000);
  });

  it('reads every variable', () => {
    const c = loadConfig({
      DATABASE_URL: 'mysql://u:p@db:3307/app',
      SLUICE_QUEUES: 'a, b',
      SLUICE_CONCURRENCY: '3',
      SLUICE_RATE: '7.5',
      SLUICE_BURST: '2',
      SLUICE_POLL_MS: '250',
      SLUICE_JOB_TIMEOUT_MS: '1000',
      SLUICE_HEARTBEAT_MS: '100',
      SLUICE_DEAD_AFTER_MS: '1000',
      SLUICE_SHUTDOWN_GRACE_MS: '0',
      SLUICE_RETENTION_HOURS: '0',
      SLUICE_HTTP_ALLOW: 'Svc:8080,api.internal',
      SLUICE_HANDLERS: './a.js,./b.js',
      SLUICE_HTTP_PORT: '0',
      SLUICE_WORKER_ID: 'w1',
      SLUICE_MIGRATE: 'false',
      LOG_LEVEL: 'debug',
    });
    assert.deepEqual(c.queues, ['a', 'b']);
    assert.equal(c.rate, 7.5);
    assert.equal(c.burst, 2);
    assert.deepEqual(c.httpAllow, ['svc:8080', 'api.internal']);
    assert.deepEqual(c.handlerModules, ['./a.js', './b.js']);
    assert.equal(c.workerId, 'w1');
    assert.equal(c.migrate, false);
    assert.equal(c.shutdownGraceMs, 0);
  });

  for (const [name, value] of [
    ['SLUICE_CONCURRENCY', 'ten'],
    ['SLUICE_CONCURRENCY', '0'],
    ['SLUICE_RATE', '-1'],
    ['SLUICE_BURST', 'x'],
    ['SLUICE_POLL_MS', '1.5'],
    ['SLUICE_JOB_TIMEOUT_MS', '0'],
    ['SLUICE_SHUTDOWN_GRACE_MS', '-5'],
    ['SLUICE_RETENTION_HOURS', 'forever'],
    ['SLUICE_HTTP_PORT', '70000'],
    ['SLUICE_MIGRATE', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['SLUICE_QUEUES', 'ok,bad queue'],
    ['SLUICE_HTTP_ALLOW', 'http://x/'],
    ['SLUICE_HTTP_ALLOW', 'svc,10.96.0.0/33'],
    ['SLUICE_HTTP_ALLOW', 'svc,fd00::/129'],
    ['SLUICE_HTTP_ALLOW', 'svc,10.96.14.2/12'],
    ['SLUICE_HTTP_ALLOW', 'svc,10.96.0/12'],
    ['SLUICE_HTTP_ALLOW', 'svc,svc/12'],
    ['SLUICE_HTTP_ALLOW', 'svc,10.0.0.0/8:80'],
    ['DATABASE_URL', 'postgres://x/y'],
    ['SLUICE_PREFETCH', '0'],
  ] as const) {
    it(`refuses ${name}=${value} naming the variable`, () => {
      const found = problems({ [name]: value });
      assert.equal(found.length, 1, JSON.stringify(found));
      assert.match(found[0]!, new RegExp(`^${name}`));
    });
  }

  it('SLUICE_HTTP_ALLOW takes CIDR ranges beside hosts, IPv4 and IPv6', () => {
    const c = loadConfig({ SLUICE_HTTP_ALLOW: 'svc, mailer.jobs.svc:8080,10.96.0.0/12,FD00:10:96::/108,[fd00::]/8,10.1.2.3/32,0.0.0.0/0' });
    assert.deepEqual(c.httpAllow, ['svc', 'mailer.jobs.svc:8080', '10.96.0.0/12', 'fd00:10:96::/108', '[fd00::]/8', '10.1.2.3/32', '0.0.0.0/0']);
  });

  it('a bad CIDR range is one problem naming SLUICE_HTTP_ALLOW, the entry and the fix', () => {
    assert.deepEqual(problems({ SLUICE_HTTP_ALLOW: 'svc,10.96.14.2/12' }), [
      'SLUICE_HTTP_ALLOW has "10.96.14.2/12", a bad CIDR range (address/prefix, e.g. 10.96.0.0/12): 10.96.14.2 has bits set past /12 (the range is 10.96.0.0/12)',
    ]);
    assert.equal(problems({ SLUICE_HTTP_ALLOW: '10.0.0.0/40,svc/8', SLUICE_RATE: 'x' }).length, 3, 'every bad entry, with the other problems');
  });

  it('never echoes an unparseable DATABASE_URL (it may hold a password)', () => {
    const [p] = problems({ DATABASE_URL: 'not a url with s3cret' });
    assert.match(p!, /DATABASE_URL/);
    assert.doesNotMatch(p!, /s3cret/);
  });

  it('rejects unknown SLUICE_* names (typos)', () => {
    assert.match(problems({ SLUICE_CONCURENCY: '5' })[0]!, /SLUICE_CONCURENCY is not a sluice setting/);
  });

  it('checks rules between variables: dead-after must exceed two heartbeats', () => {
    assert.match(problems({ SLUICE_HEARTBEAT_MS: '5000', SLUICE_DEAD_AFTER_MS: '8000' })[0]!, /SLUICE_DEAD_AFTER_MS must be more than twice/);
  });

  it('reports every problem at once', () => {
    assert.equal(problems({ SLUICE_RATE: 'x', SLUICE_POLL_MS: 'y', LOG_LEVEL: 'z' }).length, 3);
  });

  it('a bad variable stops the real process with one line naming it and a non-zero exit', async () => {
    const daemon = spawnDaemon({ SLUICE_CONCURRENCY: 'lots', SLUICE_HTTP_PORT: '0' });
    const code = await daemon.exited;
    assert.notEqual(code, 0);
    const lines = daemon.output().trim().split('\n');
    assert.equal(lines.length, 1, daemon.output());
    assert.match(lines[0]!, /^sluice: bad configuration: SLUICE_CONCURRENCY must be a whole number/);
  });

  it('a bad CIDR range in SLUICE_HTTP_ALLOW stops the real process with one line naming it', async () => {
    const daemon = spawnDaemon({ SLUICE_HTTP_ALLOW: 'svc,10.96.0.0/33', SLUICE_HTTP_PORT: '0' });
    assert.notEqual(await daemon.exited, 0);
    const lines = daemon.output().trim().split('\n');
    assert.equal(lines.length, 1, daemon.output());
    assert.match(lines[0]!, /^sluice: bad configuration: SLUICE_HTTP_ALLOW has "10\.96\.0\.0\/33", a bad CIDR range .*from 0 to 32/);
  });

  it('a handler module that cannot load stops start-up with one line', async () => {
    const daemon = spawnDaemon({ SLUICE_HANDLERS: './no/such/module.js', SLUICE_HTTP_PORT: '0', DATABASE_URL: 'mysql://root@127.0.0.1:1/x' });
    assert.equal(await daemon.exited, 78, 'EX_CONFIG, as for a bad variable');
    assert.match(daemon.output(), /sluice: bad configuration: SLUICE_HANDLERS: cannot load "\.\/no\/such\/module\.js"/);
  });
});
