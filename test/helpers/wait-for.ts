import { inspect } from 'node:util';

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  message?: string;
}

/**
 * Polls `probe` (sync or async) until it returns a truthy value, and returns that value.
 * A probe that throws counts as "not yet" (the database may be down on purpose). After
 * `timeoutMs` (default 10 s) it throws with `message` and the last value or error seen.
 * The one polling helper of the tests: never sleep, then assert.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: WaitForOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'condition not met' } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = inspect(last, { depth: 4, breakLength: Infinity });
      throw new Error(`waitFor timed out after ${timeoutMs} ms: ${message}; last seen: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
