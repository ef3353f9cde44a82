-- Protected items: what a device backs up into which vault, and when. `next_run_at` is the
-- time the next scheduled run is due; the scheduler moves it on with a conditional update,
-- so of several nodes exactly one fires each run.
CREATE TABLE protected_items (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    device_id       TEXT NOT NULL REFERENCES devices(id),
    vault_id        TEXT NOT NULL REFERENCES vaults(id),
    name            TEXT NOT NULL,
    paths           TEXT NOT NULL,
    excludes        TEXT NOT NULL DEFAULT '[]',
    one_file_system BIGINT NOT NULL DEFAULT 0,
    tags            TEXT NOT NULL DEFAULT '[]',
    pre_command     TEXT,
    post_command    TEXT,
    schedule        TEXT,
    jitter_seconds  BIGINT NOT NULL DEFAULT 0,
    window_seconds  BIGINT NOT NULL,
    next_run_at     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (device_id, name)
);
CREATE INDEX protected_items_due ON protected_items (next_run_at);
CREATE INDEX protected_items_vault ON protected_items (vault_id);

-- A queued job not started by this time is missed (a scheduled backup whose window passed).
ALTER TABLE jobs ADD COLUMN deadline_at BIGINT;
