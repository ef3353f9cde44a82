-- Other `loop server`s a tenant syncs vaults with, and the sync jobs that do it.
CREATE TABLE remotes (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    -- https://HOST:PORT of the other server.
    url           TEXT NOT NULL,
    -- SHA-256 of its certificate (hex); NULL trusts the system's roots.
    fingerprint   TEXT,
    -- Its replication token, wrapped under the master key (bound to the row's ID).
    token_wrapped TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- A push copies a vault of this server to a vault of the remote; a pull the other way. With
-- no vault named, every vault of the tenant whose name matches `vault_filter` (a JSON list
-- of glob patterns; empty: all) to or from the remote's vault of the same name.
CREATE TABLE sync_jobs (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    remote_id       TEXT NOT NULL REFERENCES remotes(id),
    direction       TEXT NOT NULL CHECK (direction IN ('push', 'pull')),
    vault_id        TEXT REFERENCES vaults(id),
    remote_vault_id TEXT,
    vault_filter    TEXT NOT NULL DEFAULT '[]',
    remove_vanished BIGINT NOT NULL,
    -- At most this many bytes a second; NULL: no limit.
    bytes_per_sec   BIGINT,
    -- A schedule as protected items have; NULL: only when run by hand.
    schedule        TEXT,
    next_run_at     BIGINT,
    created_at      BIGINT NOT NULL,
    CHECK ((vault_id IS NULL) = (remote_vault_id IS NULL))
);
CREATE INDEX sync_jobs_next_run ON sync_jobs (next_run_at);
CREATE INDEX sync_jobs_vault ON sync_jobs (vault_id);
