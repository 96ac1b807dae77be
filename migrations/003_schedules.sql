-- Recurring schedules (DESIGN.md "Recurring schedules"). Append-only once released.
--
-- Re-runnable if a process dies half-way: DDL commits on its own, so the runner may find
-- this file half-applied. CREATE TABLE IF NOT EXISTS is accepted by MySQL 8 and MariaDB.
-- For the ALTER of jobs, MariaDB's `ADD COLUMN IF NOT EXISTS` / `ADD UNIQUE KEY IF NOT
-- EXISTS` would do, but MySQL 8 has neither; a statement prepared from
-- information_schema is accepted by both, so that is the form used. The ALTER is one
-- statement (atomic DDL on MySQL 8 and MariaDB 10.6+), so one column tells whether it ran.

CREATE TABLE IF NOT EXISTS job_schedules (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  -- 5 fields (minute resolution) or 6 (leading seconds field), read in `timezone`.
  cron VARCHAR(128) NOT NULL,
  timezone VARCHAR(64) NOT NULL DEFAULT 'UTC',
  -- The template of each job made; same types as in jobs.
  queue VARCHAR(64) COLLATE utf8mb4_bin NOT NULL DEFAULT 'default',
  type VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  payload JSON NULL,
  priority INT NOT NULL DEFAULT 0,
  max_attempts INT NOT NULL DEFAULT 3,
  timeout_ms INT NULL,
  concurrency_key VARCHAR(255) COLLATE utf8mb4_bin NULL,
  overlap VARCHAR(8) NOT NULL DEFAULT 'allow',
  catch_up VARCHAR(8) NOT NULL DEFAULT 'latest',
  paused BOOLEAN NOT NULL DEFAULT FALSE,
  -- Kept by the daemon, UTC. next_run_at is the high-water mark: the earliest tick not
  -- yet made. It only moves forward, by compare-and-set, in the transaction that makes
  -- the tick's job. NULL: paused, or last_error says why there is no next tick.
  next_run_at DATETIME(3) NULL,
  last_run_at DATETIME(3) NULL,
  last_job_id BIGINT UNSIGNED NULL,
  last_error TEXT NULL,
  -- Fingerprint of what decides the ticks (cron, timezone, paused). When a user edits
  -- one of them, spec_hash changes and needs_compute turns 1: the daemon then recomputes
  -- next_run_at from the new spec and copies spec_hash into computed_for. No "remember
  -- to clear next_run_at" rule, and a new row (computed_for NULL) is picked up the same way.
  computed_for CHAR(32) NULL,
  spec_hash CHAR(32) AS (MD5(CONCAT_WS('|', cron, timezone, paused))) STORED,
  needs_compute TINYINT AS (IF(computed_for <=> MD5(CONCAT_WS('|', cron, timezone, paused)), NULL, 1)) STORED,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY job_schedules_name (name),
  -- One index serves every poll: "what is due" (needs_compute IS NULL, paused = 0,
  -- next_run_at <= now, in next_run_at order), "when is the next tick" (MIN(next_run_at)
  -- read from the index alone) and "what needs computing" (needs_compute = 1).
  KEY job_schedules_due (needs_compute, paused, next_run_at),
  CONSTRAINT job_schedules_overlap_valid CHECK (overlap IN ('allow', 'skip')),
  CONSTRAINT job_schedules_catch_up_valid CHECK (catch_up IN ('latest', 'none', 'all')),
  CONSTRAINT job_schedules_max_attempts_positive CHECK (max_attempts >= 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- jobs.schedule_id / scheduled_for: which schedule and which tick (UTC) made a job. The
-- unique key is the second guard behind the compare-and-set on next_run_at: one job per
-- tick even if that guard had a bug (NULLs, i.e. jobs users insert, never collide).
SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND COLUMN_NAME = 'schedule_id') = 0,
  'ALTER TABLE jobs
     ADD COLUMN schedule_id BIGINT UNSIGNED NULL,
     ADD COLUMN scheduled_for DATETIME(3) NULL,
     ADD UNIQUE KEY jobs_schedule_tick (schedule_id, scheduled_for)',
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
