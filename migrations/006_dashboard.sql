-- Dashboard (DESIGN.md "Dashboard"). Append-only once released.
--
-- The dashboard never counts or sorts finished history. The leader keeps two small
-- tables that every replica reads:
--  * job_counts: rows of jobs per queue and *active* status (waiting, pending, queued,
--    running), counted with a LIMITed range of an index (exact below the cap, capped = 1
--    at or above it: shown as "1,000,000+"). Cost: the backlog, never the history.
--  * job_throughput: jobs that finished per minute, queue and final status, added up from
--    the rows that finished since the last tick (a range of jobs_finished). Kept 7 days.
--  * job_dashboard_marks: the leader's bookmarks: 'throughput' = finished_at up to which
--    rows are counted (moved by compare-and-set in the same transaction as the counts, so
--    two leaders for a while never count a minute twice); 'counts' = when job_counts was
--    computed, and by which worker.
--
-- jobs_list (list_key, id), list_key = 'status/queue' (a VIRTUAL column: adding it does not
-- rebuild the table), serves every job list newest first, paged by key
-- (`WHERE list_key = 'done/emails' AND id < ? ORDER BY id DESC LIMIT n`), for finished and
-- active statuses alike, without a sort. A plain (status, queue, id) or (queue, status, id)
-- index was chosen by the optimizer for the daemon's own statements instead of jobs_claim
-- (explain.test.ts caught it); no daemon statement names list_key, so this one never is.
-- Like jobs_claim its entry moves when status
-- changes. Adding it to a large table reads every row once (an in-place, online index
-- build on MySQL 8 and MariaDB 10.6+; see the README's upgrade notes).
--
-- Re-runnable if a process dies half-way: CREATE TABLE IF NOT EXISTS, and the index is
-- added by a statement prepared from information_schema (MySQL 8 has no ADD KEY IF NOT
-- EXISTS), as 003 and 005 do.

CREATE TABLE IF NOT EXISTS job_counts (
  queue VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
  status VARCHAR(16) NOT NULL,
  n BIGINT NOT NULL,
  -- 1: the count stopped at the cap; n is the cap, shown as "1,000,000+".
  capped BOOLEAN NOT NULL DEFAULT FALSE,
  computed_at DATETIME(3) NOT NULL,
  PRIMARY KEY (queue, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS job_throughput (
  -- The minute jobs finished in (server time, like finished_at), seconds zero.
  minute DATETIME NOT NULL,
  queue VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
  status VARCHAR(16) NOT NULL,
  n INT NOT NULL,
  PRIMARY KEY (minute, queue, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS job_dashboard_marks (
  name VARCHAR(32) NOT NULL,
  at DATETIME(3) NOT NULL,
  worker VARCHAR(255) NULL,
  PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND INDEX_NAME = 'jobs_list') = 0,
  'ALTER TABLE jobs
     ADD COLUMN list_key VARCHAR(81) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
       AS (CONCAT(status, ''/'', queue)) VIRTUAL,
     ADD KEY jobs_list (list_key, id)',
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
