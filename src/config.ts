import { hostname } from 'node:os';
import { ConfigError } from './errors.js';
import { parseAllowList } from './handlers/http-allow-list.js';

/** Everything the daemon reads from the environment, validated once, frozen. */
export interface Config {
  /** mysql://user:pass@host:port/db */
  readonly databaseUrl: string;
  /** Queues served; empty means all (`*`). */
  readonly queues: readonly string[];
  /** Max jobs running at once in this replica. */
  readonly concurrency: number;
  /** Token bucket: starts per second in this replica. */
  readonly rate: number;
  /** Token bucket size. */
  readonly burst: number;
  /** Max jobs claimed but not yet started (the channel's size). */
  readonly prefetch: number;
  /** Longest a claim of quick jobs stays open, its rows written once with their outcome; 0: never. */
  readonly claimHoldMs: number;
  readonly pollMs: number;
  readonly jobTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  readonly shutdownGraceMs: number;
  /** 0 keeps finished jobs forever. */
  readonly retentionHours: number;
  /** host, host:port or CIDR range (10.96.0.0/12), lower-cased; checked by parseAllowList. */
  readonly httpAllow: readonly string[];
  /** Module paths whose default export maps type → handler. */
  readonly handlerModules: readonly string[];
  readonly httpPort: number;
  readonly workerId: string;
  readonly migrate: boolean;
  readonly logLevel: string;
  /** Namespace for the leader Lease when running in Kubernetes. */
  readonly namespace: string | undefined;
  /** Dashboard port; 0 turns the dashboard off. */
  readonly dashboardPort: number;
  /** Address the dashboard binds to (127.0.0.1: reach it with kubectl port-forward). */
  readonly dashboardHost: string;
  /** Dashboard actions (cancel, retry, pause, resume, approve) are allowed. */
  readonly dashboardActions: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

const KNOWN = new Set([
  'SLUICE_QUEUES',
  'SLUICE_CONCURRENCY',
  'SLUICE_RATE',
  'SLUICE_BURST',
  'SLUICE_PREFETCH',
  'SLUICE_CLAIM_HOLD_MS',
  'SLUICE_POLL_MS',
  'SLUICE_JOB_TIMEOUT_MS',
  'SLUICE_HEARTBEAT_MS',
  'SLUICE_DEAD_AFTER_MS',
  'SLUICE_SHUTDOWN_GRACE_MS',
  'SLUICE_RETENTION_HOURS',
  'SLUICE_HTTP_ALLOW',
  'SLUICE_HANDLERS',
  'SLUICE_HTTP_PORT',
  'SLUICE_WORKER_ID',
  'SLUICE_MIGRATE',
  'SLUICE_DASHBOARD_PORT',
  'SLUICE_DASHBOARD_HOST',
  'SLUICE_DASHBOARD_ACTIONS',
]);

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Parses and checks the environment; throws one ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const bad = (name: string, rule: string): void => {
    problems.push(`${name} ${rule} (got ${JSON.stringify(env[name])})`);
  };

  for (const name of Object.keys(env)) {
    if (name.startsWith('SLUICE_') && !KNOWN.has(name)) problems.push(`${name} is not a sluice setting (typo?)`);
  }

  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      bad(name, max === Number.MAX_SAFE_INTEGER ? `must be a whole number >= ${min}` : `must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  const num = (name: string, fallback: number, min: number): number => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) {
      bad(name, `must be a number >= ${min}`);
      return fallback;
    }
    return n;
  };
  const list = (name: string): string[] =>
    (env[name] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');

  const databaseUrl = env.DATABASE_URL?.trim() || 'mysql://root@127.0.0.1:3306/sluice';
  try {
    const url = new URL(databaseUrl);
    if (url.protocol !== 'mysql:' && url.protocol !== 'mariadb:') bad('DATABASE_URL', 'must start with mysql://');
    else if (url.pathname.length < 2) bad('DATABASE_URL', 'must name a database (mysql://user:pass@host:port/db)');
  } catch {
    // Never echo the value: it may hold a password.
    problems.push('DATABASE_URL is not a URL (expected mysql://user:pass@host:port/db)');
  }

  const rawQueues = list('SLUICE_QUEUES');
  const queues = rawQueues.includes('*') || rawQueues.length === 0 ? [] : rawQueues;
  for (const q of queues) if (!QUEUE_NAME.test(q)) bad('SLUICE_QUEUES', `has a bad queue name "${q}" (letters, digits, _.:- up to 64)`);

  const concurrency = int('SLUICE_CONCURRENCY', 10, 1, 10_000);
  const rate = num('SLUICE_RATE', 50, 0.001);
  // At least one whole token: a bucket of 0.5 would never grant a start (SLUICE_RATE=0.5
  // runs a job every two seconds, one at a time).
  const burst = num('SLUICE_BURST', Math.max(1, rate), 1);
  // A second of starts at the rate cap, and at least two rounds of slots: enough that the
  // runner never starves between polls, small enough that one replica doesn't hoard work.
  // At most 2000: a claim refills half, and claims of 1000 rows cost the database a sixth
  // less per job than claims of 500 (docs/benchmarks.md, ninth pass).
  const prefetch = int('SLUICE_PREFETCH', Math.min(Math.max(2 * concurrency, Math.ceil(rate)), 2000), 1, 100_000);
  const claimHoldMs = int('SLUICE_CLAIM_HOLD_MS', 200, 0, 1000);
  const pollMs = int('SLUICE_POLL_MS', 1000, 10, 3_600_000);
  const jobTimeoutMs = int('SLUICE_JOB_TIMEOUT_MS', 900_000, 1, 2_147_483_647);
  const heartbeatMs = int('SLUICE_HEARTBEAT_MS', 5000, 50, 3_600_000);
  const deadAfterMs = int('SLUICE_DEAD_AFTER_MS', 30_000, 100, 86_400_000);
  const shutdownGraceMs = int('SLUICE_SHUTDOWN_GRACE_MS', 25_000, 0, 3_600_000);
  const retentionHours = num('SLUICE_RETENTION_HOURS', 168, 0);
  const httpPort = int('SLUICE_HTTP_PORT', 9090, 0, 65_535);

  if (deadAfterMs <= 2 * heartbeatMs) {
    problems.push(
      `SLUICE_DEAD_AFTER_MS must be more than twice SLUICE_HEARTBEAT_MS, or one late heartbeat declares a live replica dead (got ${deadAfterMs} and ${heartbeatMs})`,
    );
  }

  const httpAllow = list('SLUICE_HTTP_ALLOW').map((h) => h.toLowerCase());
  // The handler's own parser, so that start-up refuses exactly what the handler would.
  try {
    parseAllowList(httpAllow);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }

  const bool = (name: string, fallback: boolean): boolean => {
    const raw = (env[name] ?? String(fallback)).trim().toLowerCase();
    if (!['true', 'false', '1', '0', 'yes', 'no'].includes(raw)) bad(name, 'must be true or false');
    return ['true', '1', 'yes'].includes(raw);
  };
  const migrate = bool('SLUICE_MIGRATE', true);

  const dashboardPort = int('SLUICE_DASHBOARD_PORT', 9091, 0, 65_535);
  const dashboardHost = env.SLUICE_DASHBOARD_HOST?.trim() || '127.0.0.1';
  if (!/^[A-Za-z0-9.:_-]{1,253}$/.test(dashboardHost)) bad('SLUICE_DASHBOARD_HOST', 'must be an address or host name to bind to, such as 127.0.0.1 or 0.0.0.0');
  const dashboardActions = bool('SLUICE_DASHBOARD_ACTIONS', false);

  const logLevel = (env.LOG_LEVEL ?? 'info').trim().toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) bad('LOG_LEVEL', `must be one of ${[...LOG_LEVELS].join(', ')}`);

  const workerId = env.SLUICE_WORKER_ID?.trim() || env.POD_NAME?.trim() || `${hostname()}:${process.pid}`;
  if (workerId.length > 255) bad('SLUICE_WORKER_ID', 'must be at most 255 characters');

  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    databaseUrl,
    queues: Object.freeze(queues),
    concurrency,
    rate,
    burst,
    prefetch,
    claimHoldMs,
    pollMs,
    jobTimeoutMs,
    heartbeatMs,
    deadAfterMs,
    shutdownGraceMs,
    retentionHours,
    httpAllow: Object.freeze(httpAllow),
    handlerModules: Object.freeze(list('SLUICE_HANDLERS')),
    httpPort,
    workerId,
    migrate,
    logLevel,
    namespace: env.POD_NAMESPACE?.trim() || undefined,
    dashboardPort,
    dashboardHost,
    dashboardActions,
  });
}
