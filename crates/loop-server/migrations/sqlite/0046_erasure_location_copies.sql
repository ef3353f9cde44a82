-- Two copies of one vault on one remote (pushed to two of its vaults) are two places of an
-- erasure: the place is unique with the remote's vault, not without it. SQLite cannot drop
-- a table's UNIQUE constraint, so the table is made again without it.
CREATE TABLE erasure_locations_new (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    vault_id        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('destination', 'remote')),
    place           TEXT NOT NULL,
    jurisdiction    TEXT,
    remote_vault_id TEXT,
    remote_url      TEXT,
    objects_deleted BIGINT NOT NULL DEFAULT 0,
    bytes_deleted   BIGINT NOT NULL DEFAULT 0,
    objects_left    BIGINT,
    verified_at     BIGINT,
    note            TEXT
);
INSERT INTO erasure_locations_new (id, tenant_id, vault_id, kind, place, jurisdiction,
        remote_vault_id, remote_url, objects_deleted, bytes_deleted, objects_left,
        verified_at, note)
    SELECT id, tenant_id, vault_id, kind, place, jurisdiction, remote_vault_id, remote_url,
        objects_deleted, bytes_deleted, objects_left, verified_at, note
    FROM erasure_locations;
DROP TABLE erasure_locations;
ALTER TABLE erasure_locations_new RENAME TO erasure_locations;
CREATE INDEX erasure_locations_tenant ON erasure_locations (tenant_id);
CREATE UNIQUE INDEX erasure_locations_place
    ON erasure_locations (vault_id, kind, place, COALESCE(remote_vault_id, ''));
