/** What every scenario shares: its result line, rounding, polling with a deadline, progress. */
export interface Result {
  scenario: string;
  replicas: number;
  n: number;
  jobs_per_s: number | null;
  statements_per_job: number | null;
  idle_statements_per_s: number | null;
  p50_pickup_ms: number | null;
  p99_pickup_ms: number | null;
  peak_rss_mb: number | null;
  [extra: string]: unknown;
}

/** Progress on stderr (stdout carries only the JSON lines). */
export function progress(message: string): void {
  process.stderr.write(`bench: ${new Date().toISOString()} ${message}\n`);
}

export async function until(probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: gave up after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
