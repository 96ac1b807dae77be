-- Leases of claims held open (#17). Append-only once released.
--
-- A claim of quick, plain jobs may stay open while they run (SLUICE_CLAIM_HOLD_MS, 200 ms
-- at most), so each row is written once, claim and outcome together, instead of twice.
-- While it is open its rows still read `pending` with no worker; the lease row, committed
-- before any of them starts, is what says they are taken. It is deleted when the claim
-- commits. It outlives its claim only when the claim rolled back (a crash, a lost
-- connection): every claim skips the rows a lease names, and the leader turns the leases
-- of a replica that is gone into reclaimed rows (`worker` set, still `pending`), so their
-- next run counts its attempt before the handler starts, as after any crash.
--
-- A small table: one row per open claim, a few per replica. Not a place for users to
-- write. Cost on upgrade: a new empty table.
CREATE TABLE IF NOT EXISTS job_leases (
  worker VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  batch BIGINT UNSIGNED NOT NULL,
  ids JSON NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (worker, batch)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
