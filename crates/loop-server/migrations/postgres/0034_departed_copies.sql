-- Copies that push sync jobs made on another server whose remote was removed since: the
-- tenant's erasure can no longer reach them, so its deletion certificate names them and is
-- not complete.
CREATE TABLE departed_copies (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    vault_id        TEXT NOT NULL,
    remote_id       TEXT NOT NULL,
    remote_url      TEXT NOT NULL,
    remote_vault_id TEXT,
    removed_at      BIGINT NOT NULL
);
CREATE INDEX departed_copies_tenant ON departed_copies (tenant_id);
