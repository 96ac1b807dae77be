-- sluice schema, version 1. Append-only once released: change the schema in a new file.
-- One charset and collation for tables and connections (see MYSQL-NOTES: a mismatch
-- stops `status`/`queue` comparisons from using the index cleanly).

CREATE TABLE IF NOT EXISTS jobs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  queue VARCHAR(64) NOT NULL DEFAULT 'default',
  type VARCHAR(128) NOT NULL,
  payload JSON NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  priority INT NOT NULL DEFAULT 0,
  run_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  attempts INT NOT NULL DEFAULT 0,
  max_attempts INT NOT NULL DEFAULT 3,
  timeout_ms INT NULL,
  concurrency_key VARCHAR(255) NULL,
  unique_key VARCHAR(255) NULL,
  paused BOOLEAN NOT NULL DEFAULT FALSE,
  cancel_requested_at DATETIME(3) NULL,
  progress TINYINT NULL,
  result JSON NULL,
  error TEXT NULL,
  worker VARCHAR(255) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  queued_at DATETIME(3) NULL,
  started_at DATETIME(3) NULL,
  finished_at DATETIME(3) NULL,
  cancelled_at DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  -- The key of a job that holds its exclusive resource; the unique index makes two
  -- holders impossible even when two replicas claim in the same instant.
  active_concurrency_key VARCHAR(255)
    AS (IF(status IN ('queued', 'running'), concurrency_key, NULL)) STORED,
  -- The unique key of a job that is not finished: a second insert fails while it lives.
  active_unique_key VARCHAR(255)
    AS (IF(status IN ('pending', 'queued', 'running'), unique_key, NULL)) STORED,
  -- 1 for a pending job with a cancel request, else NULL. Indexed instead of
  -- (status, cancel_requested_at), whose entry would move on every status change.
  cancel_pending TINYINT
    AS (IF(status = 'pending' AND cancel_requested_at IS NOT NULL, 1, NULL)) STORED,
  PRIMARY KEY (id),
  -- Serves the claim's WHERE and ORDER BY (lower priority first, then oldest run_at),
  -- the per-queue counts of job_stats, and the scans of queued/running rows.
  KEY jobs_claim (status, queue, priority, run_at),
  -- Pending jobs with a cancel request; the entry changes only when that does.
  KEY jobs_cancel_pending (cancel_pending),
  -- Retention: oldest finished rows first. finished_at is set once, at the final state,
  -- so the entry does not move while a job runs.
  KEY jobs_finished (finished_at),
  UNIQUE KEY jobs_active_concurrency_key (active_concurrency_key),
  UNIQUE KEY jobs_active_unique_key (active_unique_key),
  CONSTRAINT jobs_status_valid CHECK (status IN ('pending', 'queued', 'running', 'done', 'failed', 'cancelled')),
  CONSTRAINT jobs_progress_range CHECK (progress IS NULL OR progress BETWEEN 0 AND 100),
  CONSTRAINT jobs_max_attempts_positive CHECK (max_attempts >= 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS job_queues (
  name VARCHAR(64) NOT NULL,
  paused BOOLEAN NOT NULL DEFAULT FALSE,
  rate_per_sec DOUBLE NULL,
  concurrency INT NULL,
  timeout_ms INT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name),
  CONSTRAINT job_queues_rate_positive CHECK (rate_per_sec IS NULL OR rate_per_sec > 0),
  CONSTRAINT job_queues_concurrency_positive CHECK (concurrency IS NULL OR concurrency >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS job_workers (
  id VARCHAR(255) NOT NULL,
  host VARCHAR(255) NOT NULL,
  pid INT NOT NULL,
  version VARCHAR(64) NOT NULL,
  queues VARCHAR(2048) NOT NULL,
  started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  heartbeat_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY job_workers_heartbeat (heartbeat_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Counts per queue and status; grouped in jobs_claim's order, so it reads that index
-- alone (no filesort, no temporary table).
CREATE OR REPLACE VIEW job_stats AS
  SELECT queue, status, COUNT(*) AS jobs
  FROM jobs
  GROUP BY status, queue;
