-- When the server maintains the managed vaults a policy applies to (JSON: retention and
-- verify schedules, the verify's read share, the re-verify age).
ALTER TABLE policies ADD COLUMN maintenance TEXT NOT NULL DEFAULT '{}';

-- The next scheduled maintenance run of each managed vault, by kind (`retention`,
-- `verify`), with the schedule it was computed from. Moved on by a conditional update, so
-- of several nodes exactly one fires each run.
CREATE TABLE vault_runs (
    vault_id    TEXT NOT NULL REFERENCES vaults(id),
    kind        TEXT NOT NULL,
    schedule    TEXT NOT NULL,
    next_run_at BIGINT,
    PRIMARY KEY (vault_id, kind)
);
