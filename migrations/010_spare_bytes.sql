-- Spare bytes in a job's row, for what its claim and outcome add to it (#17).
-- Append-only once released.
--
-- A job's row grows when it runs: worker, queued_at, started_at, finished_at and result go
-- from NULL to values (about 33 bytes for a no-op job of a worker named `bench-1`, more
-- for a pod's name or a larger result). Rows are inserted in id order, so InnoDB leaves
-- their pages full, and a row that grows in a full page makes InnoDB reorganise the page
-- (copy it whole) or split it in two, under the index's latch. Measured on MariaDB 10.11
-- (docs/benchmarks.md, eighth pass): draining 100,000 no-op jobs through the peers
-- harness took about 1,450 page splits and 13,000 reorganisations; `npm run bench`
-- row-cost wrote 1,567 bytes of redo per job on the held-claim path and 2,736 on the
-- usual one.
--
-- spare_bytes is room kept in the row while it waits: 64 bytes by default, cut to 24 by
-- the claim, to 16 by the start and to NULL by the outcome, each write giving up about
-- what it adds. The row then does not grow and its page is neither reorganised nor split:
-- the same drain took about 600 splits (the indexes' own growth) and 350 reorganisations;
-- redo fell to 515 and 927 bytes per job. This is PostgreSQL's fillfactor, kept per row:
-- InnoDB has no setting that leaves room in pages filled by ordinary inserts. The column
-- is INVISIBLE: SELECT * and INSERT without a column list do not see it (MySQL 8.0.23+,
-- MariaDB 10.3+).
--
-- Cost on upgrade: none. The ALTER is instant (MariaDB 10.11 accepts it with
-- ALGORITHM=INSTANT: no rows read or written). Rows already there read the default and
-- keep it; pods of the earlier commit leave the room in the rows they write. Re-runnable:
-- skipped once the column exists.

SET @sluice_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs' AND COLUMN_NAME = 'spare_bytes') = 0,
  'ALTER TABLE jobs ADD COLUMN spare_bytes VARBINARY(64) INVISIBLE DEFAULT ''                                                                ''',
  'DO 0');

PREPARE sluice_stmt FROM @sluice_ddl;

EXECUTE sluice_stmt;

DEALLOCATE PREPARE sluice_stmt;
