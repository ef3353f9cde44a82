-- Replicas of a vault: further destinations holding copies of its stored (encrypted)
-- objects. The vault's own `destination` is its primary.
CREATE TABLE vault_replicas (
    id           TEXT PRIMARY KEY,
    vault_id     TEXT NOT NULL REFERENCES vaults(id),
    destination  TEXT NOT NULL,
    -- 'seeding' until its first complete replication, 'active' after, 'damaged' when a
    -- verify found it differing from the primary.
    state        TEXT NOT NULL CHECK (state IN ('seeding', 'active', 'damaged')),
    created_at   BIGINT NOT NULL,
    -- When the last complete replication began and ended: objects the vault received after
    -- `synced_from` may be missing from the replica (its lag).
    synced_from  BIGINT,
    synced_at    BIGINT,
    -- When the scheduler next queues a replication (one per vault, for all its replicas).
    next_sync_at BIGINT,
    verified_at  BIGINT,
    verify_ok    BIGINT,
    last_error   TEXT,
    UNIQUE (vault_id, destination)
);
CREATE INDEX vault_replicas_next_sync ON vault_replicas (next_sync_at);
