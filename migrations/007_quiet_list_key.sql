-- jobs_list stops moving when a job is claimed or starts (#17). Append-only once released.
--
-- 006's list_key was 'status/queue', so a job's jobs_list entry moved at every status
-- change: pending → queued at the claim and queued → done at the outcome, a delete-mark
-- and an insert each, and InnoDB's purge of the old entry later. Measured on MariaDB
-- 10.11 with the daemon's own claim and outcome statements (`npm run bench`, scenario
-- row-cost, 100,000 no-op jobs, five alternating passes): the whole server spent 98 µs
-- of CPU per job (83–107) with that key and 78 µs (76–82) with this one.
--
-- list_key is now 'pending/queue' for pending, queued and running jobs (the claimed ones
-- still count as not finished), 'status/queue' otherwise. A job's entry moves once in
-- its life, when it finishes (or waits for children, or is retried from failed). The
-- dashboard lists:
--  * pending: the 'pending/q' range, newest first, skipping the claimed rows in it (at
--    most what the replicas hold: prefetch plus concurrency each);
--  * queued and running: their range of jobs_claim (what replicas hold), sorted;
--  * every other status: its range of jobs_list as before.
-- No daemon statement names list_key.
--
-- Cost on upgrade: the index is rebuilt (reads every row once; in place and online on
-- MariaDB 10.6+ and MySQL 8, as 006's build was). Re-runnable if a process dies half-way:
-- the ALTER is one atomic statement, skipped when the expression is already the new one.

SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND COLUMN_NAME = 'list_key'
      AND GENERATION_EXPRESSION LIKE '%queued%') = 0,
  'ALTER TABLE jobs
     DROP KEY jobs_list,
     MODIFY COLUMN list_key VARCHAR(81) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
       AS (CONCAT(IF(status IN (''queued'', ''running''), ''pending'', status), ''/'', queue)) VIRTUAL,
     ADD KEY jobs_list (list_key, id)',
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
