-- The dashboard's lists read jobs_claim; jobs_list and its column list_key go (#17).
-- Append-only once released.
--
-- jobs_list (list_key, id) moved its entry once in a job's life, when it finished. On the
-- path a backlog of quick jobs takes (held claims: one row write per job), that one move
-- of an entry keyed on a virtual column cost about a fifth of the database's work per
-- job: measured on MariaDB 10.11 with `npm run bench`, scenario row-cost, variant
-- run-under-lock, 50,000 jobs, three passes each, the whole server spent 111–127 µs of
-- CPU per job with jobs_list and 92–98 µs without it (docs/benchmarks.md, seventh pass).
-- jobs_claim (status, queue, claim_lane, claim_priority, run_at) moves at every status
-- change anyway and already holds every (status, queue): the lists read its ranges, in
-- (run_at, id) order (see src/db/queries/dashboard-jobs.ts). No daemon statement named
-- list_key, and no user-facing document did.
--
-- Cost on upgrade: no table copy and no lock on writes (MariaDB 10.11 runs this ALTER
-- with ALGORITHM=NOCOPY, LOCK=NONE; dropping the index frees its pages, it reads no
-- rows). Re-runnable if a process dies half-way: one ALTER (atomic
-- DDL on MySQL 8 and MariaDB 10.6+), skipped once the column is gone.

SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND COLUMN_NAME = 'list_key') = 1,
  'ALTER TABLE jobs DROP KEY jobs_list, DROP COLUMN list_key',
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
