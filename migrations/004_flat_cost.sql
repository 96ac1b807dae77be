-- Flat cost at any backlog (docs/flat-cost.md). Append-only once released.
--
-- Jobs that wait in `pending` without being able to start — scheduled for later, paused,
-- cancel requested, or queued behind a busy concurrency key — leave the part of the
-- claim index that the claim and the idle probe read. Users see nothing of it: they
-- still insert `pending` rows and set run_at, paused and concurrency_key; status still
-- says `pending`.
--
--   claim_lane      where a pending row sits in jobs_claim: 0 can start now, 1 scheduled
--                   (run_at was later than the row's last write), 2 parked behind a busy
--                   concurrency key, 3 paused or cancel requested; NULL for every other
--                   status. Generated, so every writer (users, the daemon, workflows)
--                   keeps it right without knowing of it. A row whose run_at was in the
--                   future when it was written stays in lane 1 until the daemon's
--                   promoter rewrites it (updated_at = NOW(3)) once run_at has passed.
--   claim_priority  priority in lane 0, else NULL: lane 1 is then in run_at order, so
--                   "when is the next scheduled job due" is the first entry.
--   key_wait        kept by the daemon's claim: 1 parked behind the key's holder, 2 the
--                   next in line for the key (kept in lane 0; one per key and queue).
--   waits_for_key   the concurrency key of a pending, unpaused row with a key_wait, for
--                   jobs_key_waits (the line of each key, in claim order).
--
-- jobs_claim keeps its name and its leading (status, queue): job_stats, the counts of
-- active jobs and the orphan sweep read it as before. Its entry moves when a row changes
-- lane, as it moved before on every status change: an ordinary job (due, unpaused, no
-- key) writes no index entry more than before except one NULL entry in jobs_key_waits.
--
-- Re-runnable if a process dies half-way: one ALTER (atomic DDL on MySQL 8 and MariaDB
-- 10.6+), guarded by information_schema and run through PREPARE as 003 does, since MySQL 8
-- has no ADD COLUMN IF NOT EXISTS. The STORED columns make it a table copy (see the
-- README's upgrade notes for the time it takes).

SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND COLUMN_NAME = 'key_wait') = 0,
  'ALTER TABLE jobs
     ADD COLUMN key_wait TINYINT NULL,
     ADD COLUMN claim_lane TINYINT AS (CASE
         WHEN status <> ''pending'' THEN NULL
         WHEN paused <> 0 OR cancel_requested_at IS NOT NULL THEN 3
         WHEN key_wait = 1 AND concurrency_key IS NOT NULL THEN 2
         WHEN run_at > updated_at THEN 1
         ELSE 0 END) STORED,
     ADD COLUMN claim_priority INT AS (IF(status = ''pending'' AND paused = 0 AND cancel_requested_at IS NULL
         AND (key_wait IS NULL OR key_wait <> 1 OR concurrency_key IS NULL) AND run_at <= updated_at, priority, NULL)) STORED,
     ADD COLUMN waits_for_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin AS (IF(status = ''pending''
         AND paused = 0 AND cancel_requested_at IS NULL AND key_wait IS NOT NULL, concurrency_key, NULL)) STORED,
     DROP INDEX jobs_claim,
     ADD KEY jobs_claim (status, queue, claim_lane, claim_priority, run_at),
     ADD KEY jobs_key_waits (waits_for_key, queue, key_wait, priority, run_at)',
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
