import { loadConfig } from './config.js';
import { currentJobId } from './consumers/job-runner.js';
import { Daemon } from './daemon.js';
import { Database } from './db/database.js';
import { migrate } from './db/migrate.js';
import { ConfigError, coerceError } from './errors.js';

/**
 * `node dist/main.js`          runs the daemon until SIGTERM/SIGINT (graceful; a second
 *                              signal forces exit).
 * `node dist/main.js migrate`  applies migrations and exits.
 */
/** Longest a crash may take to hand jobs back before the process exits anyway. */
const CRASH_EXIT_MS = 15_000;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'run';
  if (!['run', 'migrate'].includes(command)) {
    process.stderr.write(`sluice: unknown command "${command}" (expected: migrate, or nothing to run the daemon)\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: bad configuration: ${err.message}\n`);
      return 78; // EX_CONFIG
    }
    throw err;
  }

  if (command === 'migrate') {
    const db = new Database({ url: config.databaseUrl, connectionLimit: 1 });
    try {
      const { applied, current } = await migrate(db);
      process.stdout.write(`${JSON.stringify({ msg: 'migrations applied', applied, version: current })}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`sluice: migrate failed: ${coerceError(err).message}\n`);
      return 1;
    } finally {
      await db.end();
    }
  }

  const daemon = new Daemon(config);
  let signals = 0;
  const exit = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        daemon.logger.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      daemon.logger.info({ signal }, 'signal received; shutting down gracefully');
      daemon.stop().then(
        () => resolve(daemon.cleanStop ? 0 : 1),
        (err: unknown) => {
          daemon.logger.error({ err: coerceError(err).message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // A handler module's callback threw where nothing catches it. Node would die with every
    // job this replica holds counted as a failed attempt; instead the culprit's attempt
    // fails, the others are handed back, and the process exits 1 for Kubernetes to restart.
    let crashing = false;
    process.on('uncaughtException', (err) => {
      const jobId = currentJobId();
      if (crashing) {
        process.stderr.write(`sluice: uncaught exception while crashing: ${err.stack ?? String(err)}\n`);
        return;
      }
      crashing = true;
      setTimeout(() => process.exit(1), CRASH_EXIT_MS).unref();
      void daemon.crash(err, jobId).finally(() => resolve(1));
    });
  });
  try {
    await daemon.start();
  } catch (err) {
    const message = coerceError(err).message;
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: bad configuration: ${message}\n`);
      await daemon.stop();
      return 78;
    }
    daemon.logger.fatal({ err: message }, 'start-up failed');
    await daemon.stop();
    return 1;
  }
  return exit;
}

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`sluice: unhandled rejection: ${coerceError(reason).stack ?? String(reason)}\n`);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Leave a moment for pino to flush, then make sure nothing keeps us alive.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`sluice: ${coerceError(err).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
