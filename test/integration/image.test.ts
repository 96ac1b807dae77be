// Builds the image with ./create_docker-image.sh and runs it against the test database:
// `node dist/main.js migrate`, then the daemon itself (probes, SIGTERM), checking that
// nothing is written outside /tmp (the Deployment's root filesystem is read-only).
//
// Base images cannot be pulled here, so BASE_IMAGE is one built from the node binary
// running this test. Skipped, with the reason, where no builder works (install buildah),
// before the daemon's entry point exists, or with SLUICE_IMAGE_TEST=0. A cold build takes
// about 30 s (npm downloads), a warm one about 10 s.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type mysql from 'mysql2/promise';
import { freePort } from '../../scripts/local-mysql/server.js';
import { type Builder, buildNodeBaseImage, builderForTests, inspectImage, runOk, TestContainer } from '../helpers/container.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { ROOT } from '../helpers/k8s.js';

const IMAGE_NAME = 'sluice-image-test';
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** What a container may leave behind outside /tmp: the mount points and files the runtime provides. */
const RUNTIME_PATHS = new Set(['/etc', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/proc', '/dev', '/sys', '/run', '/tmp']);

async function whyNotRun(): Promise<{ skip: string } | { builder: Builder }> {
  if (process.env.SLUICE_IMAGE_TEST === '0') return { skip: 'disabled by SLUICE_IMAGE_TEST=0' };
  if (!existsSync(join(ROOT, 'src/main.ts'))) return { skip: 'src/main.ts does not exist yet, so the image would have no dist/main.js' };
  const found = await builderForTests();
  return 'reason' in found ? { skip: found.reason } : found;
}

async function status(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

const plan = await whyNotRun();
const builder = 'builder' in plan ? plan.builder : 'buildah';
let tags: string[] = [];
let container: TestContainer | undefined;
let db: FreshDatabase | undefined;

describe('container image', { skip: 'skip' in plan ? plan.skip : false }, () => {
  before(
    async () => {
      const base = await buildNodeBaseImage(builder);
      const built = await runOk(join(ROOT, 'create_docker-image.sh'), ['--builder', builder, '--base-image', base, '--image-name', IMAGE_NAME], 600_000);
      // Last line: "Built sluice-image-test:0.1.0 sluice-image-test:<sha>"
      tags = /^Built (.+)$/m.exec(built.stdout.trim().split('\n').pop() ?? '')?.[1]?.split(' ') ?? [];
      assert.equal(tags.length, 2, `two tags built; output:\n${built.stdout}`);
      container = await TestContainer.create(builder, tags[0] ?? '');
      db = await freshDatabase('sluice_image_test');
    },
    { timeout: 900_000 },
  );
  after(async () => {
    await container?.remove();
    for (const tag of tags) await runOk(builder, builder === 'buildah' ? ['rmi', tag] : ['image', 'rm', tag]).catch(() => undefined);
    await db?.drop();
  });

  it('is tagged <version> and <git sha>, with OCI labels, a numeric user and node as entry point', async () => {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    assert.equal(tags[0], `${IMAGE_NAME}:${version}`);
    assert.match(tags[1] ?? '', new RegExp(`^${IMAGE_NAME}:${head.slice(0, 7)}[0-9a-f]*(-dirty)?$`));
    const [byVersion, bySha] = await Promise.all(tags.map((t) => inspectImage(builder, t)));
    assert.ok(byVersion && bySha);
    assert.equal(byVersion.id, bySha.id, 'both tags name one image');
    assert.deepEqual(byVersion.entrypoint, ['node', 'dist/main.js'], 'exec form: node is PID 1 and gets SIGTERM');
    assert.match(byVersion.user, /^[1-9]\d*(:\d+)?$/, 'a numeric non-root user');
    assert.equal(byVersion.labels['org.opencontainers.image.version'], version);
    assert.match(byVersion.labels['org.opencontainers.image.revision'] ?? '', new RegExp(`^${head}(-dirty)?$`));
  });

  it('holds dist/, migrations/ and production dependencies only', async () => {
    const probe = `const fs = require('fs'); console.log(JSON.stringify({
      main: fs.existsSync('dist/main.js'), migrations: fs.readdirSync('migrations').filter((f) => f.endsWith('.sql')).length,
      mysql2: fs.existsSync('node_modules/mysql2'), typescript: fs.existsSync('node_modules/typescript'),
      tsx: fs.existsSync('node_modules/tsx'), src: fs.existsSync('src'), uid: process.getuid() }))`;
    const result = await container?.exec(['node', '-e', probe]);
    assert.equal(result?.code, 0, result?.stderr);
    const found = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.deepEqual(
      { ...found, uid: (found.uid as number) > 0 },
      { main: true, migrations: found.migrations as number, mysql2: true, typescript: false, tsx: false, src: false, uid: true },
    );
    assert.ok((found.migrations as number) >= 1, 'migrations/*.sql are in the image');
  });

  it('runs `node dist/main.js migrate` against the test database', async () => {
    assert.ok(db && container);
    const result = await container.exec(['node', 'dist/main.js', 'migrate'], { DATABASE_URL: db.url });
    assert.equal(result.code, 0, `migrate failed:\n${result.stdout}\n${result.stderr}`);
    const [rows] = await db.pool.query<mysql.RowDataPacket[]>(
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name',
    );
    const tables = rows.map((r) => String(r.name));
    for (const t of ['job_queues', 'job_stats', 'job_workers', 'jobs']) assert.ok(tables.includes(t), `${t} exists (found ${tables.join(', ')})`);
  });

  it('runs the daemon: /healthz and /readyz answer, SIGTERM stops it with exit 0', async () => {
    assert.ok(db && container);
    const port = await freePort();
    const daemon = await container.start(['node', 'dist/main.js'], {
      DATABASE_URL: db.url,
      SLUICE_HTTP_PORT: String(port),
      SLUICE_SHUTDOWN_GRACE_MS: '2000',
      POD_NAME: 'image-test',
      LOG_LEVEL: 'warn',
    });
    try {
      await waitFor(async () => (await status(`http://127.0.0.1:${port}/readyz`)) === 200, {
        timeoutMs: 30_000,
        message: `the daemon in the image never became ready; output:\n${daemon.output()}`,
      });
      assert.equal(await status(`http://127.0.0.1:${port}/healthz`), 200);
    } finally {
      const code = await daemon.stop(15_000);
      assert.equal(code, 0, `exit code after SIGTERM; output:\n${daemon.output()}`);
    }
  });

  it('writes nothing outside /tmp, so a read-only root filesystem works', async (t) => {
    assert.ok(container);
    const written = await container.writtenPaths();
    if (written === undefined) return t.skip(`${builder} enforced a read-only root itself, or its storage driver does not show writes`);
    assert.deepEqual(
      written.filter((p) => !RUNTIME_PATHS.has(p) && !p.startsWith('/tmp/')),
      [],
      'paths written outside /tmp',
    );
  });
});
