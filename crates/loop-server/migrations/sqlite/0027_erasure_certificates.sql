-- Provable erasure of a tenant: every place its vaults' objects were held, recorded when its
-- keys were destroyed, with what the erasure job deleted there and what a listing found
-- afterwards; and the deletion certificate made from them, whose SHA-256 is in the tenant's
-- audit chain.
CREATE TABLE erasure_locations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    vault_id        TEXT NOT NULL,
    -- 'destination' (the primary's or a replica's, on this server) or 'remote' (another
    -- server's vault a push sync job copied to).
    kind            TEXT NOT NULL CHECK (kind IN ('destination', 'remote')),
    -- The destination's name, or the remote's ID.
    place           TEXT NOT NULL,
    jurisdiction    TEXT,
    remote_vault_id TEXT,
    remote_url      TEXT,
    objects_deleted BIGINT NOT NULL DEFAULT 0,
    bytes_deleted   BIGINT NOT NULL DEFAULT 0,
    objects_left    BIGINT,
    verified_at     BIGINT,
    note            TEXT,
    UNIQUE (vault_id, kind, place)
);
CREATE INDEX erasure_locations_tenant ON erasure_locations (tenant_id);

CREATE TABLE deletion_certificates (
    id        TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL UNIQUE REFERENCES tenants(id),
    issued_at BIGINT NOT NULL,
    -- The certificate (JSON) exactly as hashed.
    body      TEXT NOT NULL,
    sha256    TEXT NOT NULL
);
