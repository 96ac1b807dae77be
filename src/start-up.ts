import type { Database } from './db/database.js';
import { migrate, migrationsDone } from './db/migrate.js';
import type { Logger } from './observability/logger.js';
import { retry } from './retry.js';

/** Longest wait between two tries of a start-up step. */
const START_UP_MAX_BACKOFF_MS = 10_000;

export interface StartUpOptions {
  /** Fired when the daemon stops: the waiting ends and the step gives up. */
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Waits for the database and applies the migrations (with `migrate` false, waits until
 * they are applied): an unreachable database is not a configuration error, so this tries
 * again with backoff for as long as it takes. Resolves true once done, false when stopped
 * first. `onFailure` hears each failed try (the daemon is not ready meanwhile).
 */
export async function untilDatabase(
  db: Database,
  opts: StartUpOptions & { migrate: boolean; onFailure: () => void },
): Promise<boolean> {
  const { signal, logger } = opts;
  if (signal.aborted) return false;
  const step = async (): Promise<void> => {
    if (opts.migrate) {
      const { applied, current } = await migrate(db);
      if (applied.length > 0) logger.info({ applied, version: current }, 'migrations applied');
    } else if (!(await migrationsDone(db))) {
      throw new Error('migrations are not applied yet (SLUICE_MIGRATE=false: run `node dist/main.js migrate`)');
    }
  };
  try {
    await retry(step, {
      signal,
      maxMs: START_UP_MAX_BACKOFF_MS,
      onRetry: (err, failures, delay) => {
        opts.onFailure();
        // The first few at warn, then one in twenty: an outage should not flood the log.
        logger[failures <= 3 || failures % 20 === 0 ? 'warn' : 'debug'](
          { err: err.message, failures, retry_in_ms: delay },
          'database not ready; retrying',
        );
      },
    });
    return true;
  } catch (err) {
    if (signal.aborted) return false;
    throw err;
  }
}

/** Runs a start-up step until it succeeds, backing off; gives up (throwing) only when stopped. */
export function retryStartUpStep<T>(what: string, fn: () => Promise<T>, opts: StartUpOptions): Promise<T> {
  return retry(fn, {
    signal: opts.signal,
    maxMs: START_UP_MAX_BACKOFF_MS,
    onRetry: (err, failures, delay) =>
      opts.logger.warn({ step: what, err: err.message, failures, retry_in_ms: delay }, 'start-up step failed; retrying'),
  });
}
