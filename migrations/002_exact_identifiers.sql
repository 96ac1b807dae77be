-- sluice schema, version 2: identifiers compare exactly (DESIGN: "Text columns compare
-- exactly"). queue, type, worker, concurrency_key and unique_key, wherever they appear,
-- become utf8mb4_bin, so that:
--   * 'Emails' and 'emails' are two queues, as they are in SLUICE_QUEUES (under
--     utf8mb4_unicode_ci SQL saw one queue where the daemon saw two);
--   * 'o-😀' and 'o-🎉' are two unique or concurrency keys (unicode_ci weighs them equal);
--   * a user's table in any utf8mb4 collation (the server default, say) joins to these
--     columns with a plain `=`: when a _bin and a _ci collation of one charset meet with
--     equal coercibility, the _bin one wins instead of "Illegal mix of collations".
-- Other text columns (status, error, …) keep the tables' utf8mb4_unicode_ci.
--
-- One ALTER TABLE per table, so each table is rebuilt once (jobs: a copy of every row;
-- see the README's upgrade notes). Every index is kept: MODIFY leaves them in place and
-- rebuilds their entries in the new order. No value can collide on the way: values that
-- differ under unicode_ci also differ byte for byte, so the unique keys still hold.
-- Re-runnable: a MODIFY to the definition a column already has changes nothing, so a
-- process that dies between two statements applies the file again from the top.
-- Portable: MariaDB 10.6+ and MySQL 8 both accept this syntax; MariaDB needs a STORED
-- generated column's expression restated on MODIFY (MySQL accepts it too), and
-- active_concurrency_key / active_unique_key take the collation of the key they copy.

ALTER TABLE jobs
  MODIFY queue VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT 'default',
  MODIFY type VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  MODIFY concurrency_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  MODIFY unique_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  MODIFY worker VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  MODIFY active_concurrency_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
    AS (IF(status IN ('queued', 'running'), concurrency_key, NULL)) STORED,
  MODIFY active_unique_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
    AS (IF(status IN ('pending', 'queued', 'running'), unique_key, NULL)) STORED;

ALTER TABLE job_queues
  MODIFY name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

-- id is a worker id; queues is the comma list of SLUICE_QUEUES the replica serves.
ALTER TABLE job_workers
  MODIFY id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  MODIFY queues VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

-- The view's definition is unchanged; it is recreated so that its stored metadata is
-- written against the new columns. It still reads jobs_claim alone.
CREATE OR REPLACE VIEW job_stats AS
  SELECT queue, status, COUNT(*) AS jobs
  FROM jobs
  GROUP BY status, queue;
