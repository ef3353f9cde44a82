-- Snapshots a retention job is about to remove, recorded before it removes any: when the job
-- is cut off part-way (its server killed), the vault's next retention run puts those that
-- are gone in the audit log, in the name of the job that removed them.
CREATE TABLE retention_removals (
    vault_id  TEXT NOT NULL,
    snapshot  TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    job_id    TEXT NOT NULL,
    policy_id TEXT,
    PRIMARY KEY (vault_id, snapshot)
);
