/**
 * The limits that keep one row from stopping a replica. Each is documented in the
 * docs/limits.md table; a job that exceeds one ends `failed` with an error saying which.
 */

/** A result larger than this (as JSON text, UTF-8) is not stored: the job fails. */
export const MAX_RESULT_BYTES = 1024 * 1024;

/** `error` texts are cut to this many UTF-8 bytes, at a code point boundary. */
export const MAX_ERROR_BYTES = 16 * 1024;

/**
 * Deepest nesting of arrays and objects a result may have. MariaDB refuses JSON nested 32
 * levels or deeper (measured on 10.11: 31 is stored, 32 is refused); MySQL 8 allows 100.
 */
export const MAX_JSON_DEPTH = 31;

/** A payload larger than this (bytes of JSON text) fails its job before any handler runs. */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/**
 * Payloads up to this size travel with the claim; larger ones are read when their job
 * starts, so a claim of many rows never holds many large payloads at once.
 */
export const INLINE_PAYLOAD_BYTES = 16 * 1024;

/**
 * Most payload bytes claimed jobs may carry while they wait to start. With
 * INLINE_PAYLOAD_BYTES it caps one claim at 1,024 rows (the best batch size measured).
 */
export const QUEUED_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** Most payload bytes held by runs at once; larger payloads wait for room before they start. */
export const PAYLOAD_BUDGET_BYTES = MAX_PAYLOAD_BYTES;

/** Most bytes one batched outcome statement carries (well below max_allowed_packet). */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Longest delay before a retry (`retryAfterMs`, Retry-After): a year keeps run_at in DATETIME range. */
export const MAX_RETRY_DELAY_MS = 365 * 24 * 3600 * 1000;

/**
 * Highest `attempts` a run may start from: `attempts + 1` must still fit in INT.
 * A job at the limit fails without running.
 */
export const MAX_ATTEMPTS_BEFORE_RUN = 2_147_483_646;

/** Exponent cap of the retry backoff (src/backoff.ts; 2^12 s > its 1 h cap), applied before POW. */
export const MAX_BACKOFF_EXPONENT = 12;
