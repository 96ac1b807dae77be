import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { spawnDaemon, testEnv, waitForWorker, type DaemonProcess } from '../helpers/daemon.js';
import { freshDatabase, waitFor, type FreshDatabase } from '../helpers/database.js';
import { chromiumInstalled, freePort, launchChromium } from '../helpers/dashboard.js';
import { getJob, insertJob, insertJobs, waitFinished } from '../helpers/factory.js';

// A real daemon (node dist/main.js) serves the dashboard with actions on; headless
// Chromium (Debian's package, driven by playwright-core) reads every page, clicks through
// a list to a job and cancels it. Screenshots land in docs/dashboard/ (docs/dashboard.md).

const SHOTS = fileURLToPath(new URL('../../docs/dashboard/', import.meta.url));

let db: FreshDatabase;
let daemon: DaemonProcess;
let browser: Browser;
let base: string;
let stuckId: number;
let parentId: number;

/** Opens `path`, fails on any console error or page error, and saves a screenshot. */
async function visit(page: Page, path: string, shot?: string): Promise<void> {
  const errors: string[] = [];
  const onConsole = (m: { type(): string; text(): string }): void => void (m.type() === 'error' && errors.push(m.text()));
  const onError = (e: Error): void => void errors.push(e.message);
  page.on('console', onConsole);
  page.on('pageerror', onError);
  const res = await page.goto(base + path, { waitUntil: 'load' });
  assert.equal(res?.status(), 200, `${path} answered ${res?.status()}`);
  // Let the refresh script make its first poll: its errors count too.
  await page.waitForFunction("!document.getElementById('refresh-state') || document.getElementById('refresh-state').textContent !== ''");
  await page.waitForTimeout(300);
  page.off('console', onConsole);
  page.off('pageerror', onError);
  assert.deepEqual(errors, [], `console errors on ${path}`);
  if (shot) await page.screenshot({ path: `${SHOTS}${shot}.png`, fullPage: true });
}

describe('dashboard in a real browser', { skip: !chromiumInstalled() && 'chromium is not installed (apt-get install chromium)' }, () => {
  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    db = await freshDatabase('dashboard_browser');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    daemon = spawnDaemon(testEnv(db.url, { SLUICE_WORKER_ID: 'dash-1', SLUICE_DASHBOARD_PORT: String(port), SLUICE_DASHBOARD_ACTIONS: 'true' }));
    await waitForWorker(db.pool, 'dash-1', 30_000);
    // Something to look at: done, failed, a stuck running one, a waiting workflow, a schedule.
    const ids = await insertJobs(db.pool, [
      { queue: 'emails', type: 'sleep', payload: { ms: 5 } },
      { queue: 'emails', type: 'sleep', payload: { ms: 5 } },
      { queue: 'reports', type: 'no-such-type', payload: { month: '2026-11', note: '<b>not bold</b>' }, maxAttempts: 1 },
    ]);
    for (const id of ids) await waitFinished(db.pool, id);
    stuckId = await insertJob(db.pool, { queue: 'emails', type: 'sleep', payload: { ms: null } });
    await waitFor(async () => (await getJob(db.pool, stuckId)).status === 'running', { message: 'stuck job never ran' });
    const [p] = await db.pool.query<import('mysql2').ResultSetHeader>(
      "INSERT INTO jobs (queue, type, status, approval_required, deps_total) VALUES ('reports', 'merge', 'waiting', TRUE, 2)",
    );
    parentId = p.insertId;
    await db.pool.query("INSERT INTO jobs (queue, type, payload, parent_id, paused) VALUES ('reports', 'sleep', '{\"ms\": 1}', ?, TRUE), ('reports', 'sleep', '{\"ms\": 1}', ?, TRUE)", [parentId, parentId]);
    await db.pool.query("INSERT INTO job_schedules (name, cron, type, payload) VALUES ('nightly-report', '0 3 * * *', 'sleep', '{\"ms\": 1}')");
    // The leader's snapshot shows the running job.
    await waitFor(async () => {
      const res = await fetch(`${base}/api/overview`);
      const o = (await res.json()) as { queues: Array<{ name: string; counts: Record<string, { n: number }> }> };
      const emails = o.queues.find((q) => q.name === 'emails') as { counts: Record<string, { n: number }>; lastHour: Record<string, number> } | undefined;
      // Throughput is counted a couple of seconds behind the clock (late commits).
      return emails?.counts.running?.n === 1 && emails.lastHour.done === 2;
    }, { timeoutMs: 15_000, message: 'snapshot never counted the running and the finished jobs' });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    daemon?.proc.kill('SIGTERM');
    await daemon?.exited;
    await db?.drop();
  });

  it('loads every page with no console errors', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await visit(page, '/', 'overview');
    assert.match(await page.locator('h1').innerText(), /Overview/);
    assert.equal(await page.locator('svg[role=img] title').first().textContent(), 'Jobs finished per minute, last hour');
    await visit(page, '/jobs', 'jobs');
    await visit(page, '/jobs?queue=reports&status=failed', 'jobs-failed');
    await visit(page, `/jobs/${parentId}`, 'job-workflow');
    await visit(page, `/jobs/${parentId}/tree`, 'tree');
    await visit(page, '/schedules', 'schedules');
    await visit(page, '/workers', 'workers');
    // User data is text, never markup.
    await visit(page, '/jobs?queue=reports&status=failed');
    await page.getByRole('link', { name: /^\d+$/ }).first().click();
    assert.match(await page.locator('pre').filter({ hasText: 'not bold' }).innerText(), /<b>not bold<\/b>/);
    await page.close();
  });

  it('clicks from the overview through a list to a job', async () => {
    const page = await browser.newPage();
    await visit(page, '/');
    await page.getByRole('row', { name: /emails/ }).getByRole('link', { name: '1' }).first().click();
    await page.waitForURL(/\/jobs\?queue=emails&status=running/);
    await page.getByRole('link', { name: String(stuckId), exact: true }).click();
    await page.waitForURL(new RegExp(`/jobs/${stuckId}$`));
    assert.equal(await page.locator('h1').innerText(), `Job ${stuckId}`);
    assert.match(await page.locator('.status').first().innerText(), /running/);
    await page.screenshot({ path: `${SHOTS}job.png`, fullPage: true });
    await page.close();
  });

  it('cancels a running job with its button', async () => {
    const page = await browser.newPage();
    await visit(page, `/jobs/${stuckId}`);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL(/notice=/);
    assert.match(await page.locator('.flash').innerText(), new RegExp(`Job ${stuckId}: cancel done`));
    const job = await waitFinished(db.pool, stuckId);
    assert.equal(job.status, 'cancelled');
    await page.close();
  });

  it('approves a waiting job and resumes its paused children in bulk', async () => {
    const page = await browser.newPage();
    await visit(page, `/jobs/${parentId}`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(/notice=/);
    const [rows] = await db.pool.query<import('mysql2').RowDataPacket[]>('SELECT approved_by FROM jobs WHERE id = ?', [parentId]);
    assert.equal(rows[0]?.approved_by, 'dashboard');
    await page.goto(`${base}/jobs?queue=reports&status=pending`);
    await page.selectOption('#bulk-action', 'resume');
    await page.getByRole('button', { name: 'Apply to all matching' }).click();
    await page.waitForURL(/notice=/);
    await page.screenshot({ path: `${SHOTS}bulk-action.png`, fullPage: true });
    // Children run, the approved parent is released and runs (no handler: it fails).
    await waitFor(async () => ['done', 'failed'].includes((await getJob(db.pool, parentId)).status), { timeoutMs: 15_000, message: 'parent never ran' });
    await page.close();
  });

  it('refuses a cross-site POST with 403', async () => {
    const res = await fetch(`${base}/api/jobs/${parentId}/cancel`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=x',
    });
    assert.equal(res.status, 403);
    // From a page of another origin, in the browser: the form post is refused too.
    const page = await browser.newPage();
    await page.route('http://evil.test/', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<form method="post" action="${base}/api/jobs/${parentId}/pause"><input name="token" value="guess"></form><script>document.forms[0].submit()</script>`,
      }),
    );
    const answered = page.waitForResponse((r) => r.url().startsWith(base));
    await page.goto('http://evil.test/');
    assert.equal((await answered).status(), 403);
    await page.close();
  });
});
