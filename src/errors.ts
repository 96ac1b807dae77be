/** A bad environment variable: reported in one line at start-up, never with a stack. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

/**
 * Thrown by a handler when retrying cannot help (bad payload, 4xx answer):
 * the job goes to `failed` at once whatever attempts remain.
 */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/**
 * Thrown by a handler that wants the next attempt no earlier than `retryAfterMs`
 * (an HTTP `Retry-After`, say). Still counts as a failed attempt.
 */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
  }
}

/**
 * Permanent: a PermanentJobError, or any error a handler module marks so without
 * importing sluice — `Object.assign(new Error('…'), { permanent: true })`.
 */
export function isPermanent(err: Error): boolean {
  return err instanceof PermanentJobError || err.name === 'PermanentJobError' || (err as { permanent?: unknown }).permanent === true;
}

/** The "not before" delay a handler asked for (RetryAfterError, or `retryAfterMs` on any error). */
export function retryAfterOf(err: Error): number | undefined {
  const ms = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** Anything thrown, as an Error with a readable message. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(`non-error thrown: ${JSON.stringify(thrown)}`);
  } catch {
    return new Error(`non-error thrown: ${String(thrown)}`);
  }
}

/** MySQL error numbers worth another try: the statement lost a race, not an argument. */
const RETRYABLE_ERRNOS = new Set([
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  1040, // ER_CON_COUNT_ERROR
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
  1927, // ER_CONNECTION_KILLED (MariaDB)
  1053, // ER_SERVER_SHUTDOWN
  1290, // ER_OPTION_PREVENTS_STATEMENT (--read-only during a failover)
  1836, // ER_READ_ONLY_MODE
  1792, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
]);
/** Refused for what the statement carries, even though the server then drops the connection. */
const PERMANENT_ERRNOS = new Set([
  1153, // ER_NET_PACKET_TOO_LARGE: bigger than max_allowed_packet
]);
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** True when the database failed transiently: deadlock, lock wait, lost or refused connection. */
export function isRetryableDbError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { errno?: unknown; code?: unknown; fatal?: unknown };
  if (typeof e.errno === 'number' && PERMANENT_ERRNOS.has(e.errno)) return false;
  if (typeof e.errno === 'number' && RETRYABLE_ERRNOS.has(e.errno)) return true;
  if (typeof e.code === 'string' && RETRYABLE_CODES.has(e.code)) return true;
  return e.fatal === true;
}

/** True for MySQL's duplicate-key error (1062). */
export function isDuplicateKeyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { errno?: unknown }).errno === 1062;
}
