-- The service's metadata. Times are Unix milliseconds (INTEGER), IDs are prefixed random
-- strings, secrets are stored only as hashes. Kept to SQL that PostgreSQL also accepts.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES tenants(id),
    -- '/' + ancestor IDs + own ID + '/': a subtree is a prefix match.
    path        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('provider', 'partner', 'customer')),
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  BIGINT NOT NULL
);

-- The tenant key, wrapped under the server master key. Deleting the row shreds every
-- managed vault of the tenant.
CREATE TABLE tenant_keys (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    wrapped     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    email            TEXT NOT NULL UNIQUE,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    business_address TEXT NOT NULL DEFAULT '',
    password_hash    TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'invited', 'disabled')),
    invite_hash      TEXT UNIQUE,
    totp_secret      TEXT,
    totp_enabled     BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX users_tenant ON users(tenant_id);

CREATE TABLE role_bindings (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    role        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (user_id, tenant_id, role)
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users(id),
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    idle_secs     BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT,
    ip            TEXT,
    user_agent    TEXT,
    browser       TEXT,
    os            TEXT,
    device_label  TEXT,
    remember      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT,
    deleted_at    BIGINT
);

CREATE TABLE vaults (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    destination   TEXT NOT NULL,
    key_custody   TEXT NOT NULL CHECK (key_custody IN ('managed', 'customer')),
    quota_bytes   BIGINT,
    used_bytes    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX vaults_tenant ON vaults(tenant_id);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    secret_hash   TEXT NOT NULL UNIQUE,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL CHECK (kind IN ('device', 'api')),
    name          TEXT NOT NULL,
    device_id     TEXT REFERENCES devices(id),
    -- Space-separated vault IDs; empty means every vault of the tenant.
    vault_ids     TEXT NOT NULL,
    -- Space-separated: backup, restore, manage.
    permissions   TEXT NOT NULL,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);

-- Per-tenant head of the audit chain. Appending takes this row first, which serializes the
-- tenant's appends (a row lock on PostgreSQL, the write lock on SQLite).
CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE audit_events (
    tenant_id    TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT,
    outcome      TEXT NOT NULL,
    ip           TEXT,
    details      TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_at ON audit_events(at);
