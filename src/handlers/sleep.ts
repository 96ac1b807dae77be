import { setTimeout as delay } from 'node:timers/promises';
import { PermanentJobError } from '../errors.js';
import type { Handler } from './types.js';

/**
 * `sleep`: payload `{"ms": N}` waits N ms and returns `{ slept: N }`; `{"ms": null}`
 * waits until aborted — a stuck job, as in the classic demo.
 */
export const sleepHandler: Handler = async (job, ctx) => {
  const payload = job.payload;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload) || !('ms' in payload)) {
    throw new PermanentJobError('sleep: payload must be an object like {"ms": 1000} (or {"ms": null} to sleep until cancelled)');
  }
  const ms: unknown = payload.ms;
  if (ms === null) {
    await new Promise<never>((_, reject) => {
      const abort = (): void => reject(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted'));
      if (ctx.signal.aborted) abort();
      else ctx.signal.addEventListener('abort', abort, { once: true });
    });
  }
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > 2_147_483_647) {
    throw new PermanentJobError(`sleep: "ms" must be a number of milliseconds from 0 to 2147483647 or null (got ${JSON.stringify(ms)})`);
  }
  // 0 ms is a no-op job: no timer tick.
  if (ms > 0) await delay(ms, undefined, { signal: ctx.signal });
  return { slept: ms };
};
