-- Who runs a job: the server itself, or the agent of a device (backups, restores, and the
-- retention and verify of a customer-key vault by its maintainer).
ALTER TABLE jobs ADD COLUMN runner TEXT NOT NULL DEFAULT 'server';
UPDATE jobs SET runner = 'agent' WHERE kind IN ('backup', 'restore');

-- The device whose agent holds a customer-key vault's passphrase and runs its retention
-- and verify jobs.
ALTER TABLE vaults ADD COLUMN maintainer_device_id TEXT REFERENCES devices(id);

-- Deletions a maintainer agent's prune announced: that agent may delete each object only
-- once the `deletion_grace_hours` of the vault's policy have passed since the first
-- announcement. A row goes with its object, and all go with the maintainer.
CREATE TABLE planned_deletions (
    vault_id     TEXT NOT NULL REFERENCES vaults(id),
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    announced_at BIGINT NOT NULL,
    device_id    TEXT NOT NULL,
    PRIMARY KEY (vault_id, kind, name)
);
