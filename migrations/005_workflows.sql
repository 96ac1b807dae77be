-- Workflows: children, fan-in, waiting, approval (DESIGN.md "Workflows"). Append-only
-- once released.
--
-- One ALTER TABLE, so jobs is rebuilt once (STORED generated columns and the new check
-- copy every row; see the README's upgrade notes) and the change is all or nothing: MySQL 8
-- and MariaDB 10.6+ apply a single ALTER atomically. Re-runnable if a process dies
-- half-way: the statement is prepared from information_schema only while parent_id is
-- missing (MySQL 8 has no ADD COLUMN IF NOT EXISTS), as 003 does.
--
-- What changes:
--  * status may be 'waiting' (parked: not claimed until released). The old check is
--    dropped and a new one added under a new name (a check constraint's name is unique
--    per schema on MySQL; a new name avoids relying on drop-before-add in one ALTER).
--    Waiting rows sit in their own range of jobs_claim (status first), so the claim, which
--    reads only status = 'pending', and its EXPLAIN are unchanged.
--  * the contract's columns: parent_id, deps_total, deps_done, deps_failed,
--    on_child_failure, approval_required, approved_at, approved_by, wait_deadline.
--  * the daemon's bookkeeping (users leave these alone):
--      suspended_at        when the job's own handler parked it (ctx.enqueue(…, { wait: true }));
--                          its next run has job.resumed = true
--      counted_as          on a child: what its parent's counters hold for it ('done' or
--                          'failed'; NULL: not counted). A child that ends again (retried by
--                          hand) moves its count instead of adding a second one
--      cancel_cascaded_at  the cancel_requested_at whose cancel was pushed to the children
--      pause_cascaded      the value of paused last pushed to the children
--  * workflow_todo: 1 for a row the leader must act on, else NULL (like cancel_pending in
--    001), so the leader finds work by one index lookup and an idle probe reads no row:
--      1 release (waiting → pending)      2 fail fast (a child failed, policy 'fail')
--      3 cancel a waiting job             4 cancel a pending child (counted into its parent)
--      5 push a cancel to the children    6 push paused to the children
--    5 and 6 only for jobs that can have children (waiting, or sealed: deps_total set): a
--    plain job that is paused or cancelled costs the leader nothing (200,000 paused jobs
--    would otherwise each take a cascade pass and a write).
--  * wait_expiry: wait_deadline while waiting, else NULL (the deadline sweep's index).
--  * active_unique_key also holds for waiting jobs: a waiting job is not finished.
--  * jobs_parent (parent_id, id): children in id order, for ctx.children(), cascades and
--    the reconciler. Neither column ever changes, so the entry never moves.
-- No foreign key on parent_id: a cascading delete that locks children under the parent
-- deadlocked a peer (BullMQ's PostgreSQL backend) against finishing children.
-- The old check is dropped only where it exists (MySQL before 8.0.16 parsed CHECK and
-- kept nothing); DROP CONSTRAINT needs MySQL 8.0.19+ or MariaDB.
SET @sluice_drop_check = IF(
  (SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS
    WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND CONSTRAINT_NAME = 'jobs_status_valid') = 0,
  '', 'DROP CONSTRAINT jobs_status_valid,');

SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND COLUMN_NAME = 'parent_id') = 0,
  CONCAT('ALTER TABLE jobs ', @sluice_drop_check, '
     ADD CONSTRAINT jobs_status_lifecycle
       CHECK (status IN (''waiting'', ''pending'', ''queued'', ''running'', ''done'', ''failed'', ''cancelled'')),
     ADD COLUMN parent_id BIGINT UNSIGNED NULL,
     ADD COLUMN deps_total INT NULL,
     ADD COLUMN deps_done INT NOT NULL DEFAULT 0,
     ADD COLUMN deps_failed INT NOT NULL DEFAULT 0,
     ADD COLUMN on_child_failure VARCHAR(8) NOT NULL DEFAULT ''fail'',
     ADD COLUMN approval_required BOOLEAN NOT NULL DEFAULT FALSE,
     ADD COLUMN approved_at DATETIME(3) NULL,
     ADD COLUMN approved_by VARCHAR(255) NULL,
     ADD COLUMN wait_deadline DATETIME(3) NULL,
     ADD COLUMN suspended_at DATETIME(3) NULL,
     ADD COLUMN counted_as VARCHAR(8) NULL,
     ADD COLUMN cancel_cascaded_at DATETIME(3) NULL,
     ADD COLUMN pause_cascaded BOOLEAN NOT NULL DEFAULT FALSE,
     ADD COLUMN workflow_todo TINYINT AS (CASE
         WHEN status = ''waiting'' AND cancel_requested_at IS NOT NULL THEN 3
         WHEN status = ''waiting'' AND on_child_failure = ''fail'' AND deps_failed > 0 THEN 2
         WHEN status = ''waiting'' AND deps_total IS NOT NULL AND deps_done + deps_failed >= deps_total
              AND (approval_required = 0 OR approved_at IS NOT NULL) THEN 1
         WHEN status = ''pending'' AND cancel_requested_at IS NOT NULL AND parent_id IS NOT NULL THEN 4
         WHEN cancel_requested_at IS NOT NULL AND NOT (cancel_cascaded_at <=> cancel_requested_at)
              AND (status = ''waiting'' OR deps_total IS NOT NULL) THEN 5
         WHEN status IN (''failed'', ''cancelled'') AND deps_total IS NOT NULL
              AND deps_done + deps_failed < deps_total AND cancel_cascaded_at IS NULL THEN 5
         WHEN paused <> pause_cascaded AND (status = ''waiting'' OR deps_total IS NOT NULL) THEN 6
       END) STORED,
     ADD COLUMN wait_expiry DATETIME(3) AS (IF(status = ''waiting'', wait_deadline, NULL)) STORED,
     MODIFY active_unique_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
       AS (IF(status IN (''waiting'', ''pending'', ''queued'', ''running''), unique_key, NULL)) STORED,
     ADD KEY jobs_parent (parent_id, id),
     ADD KEY jobs_workflow_todo (workflow_todo),
     ADD KEY jobs_wait_expiry (wait_expiry),
     ADD CONSTRAINT jobs_on_child_failure_valid CHECK (on_child_failure IN (''fail'', ''continue'')),
     ADD CONSTRAINT jobs_deps_total_valid CHECK (deps_total IS NULL OR deps_total >= 0)'),
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
