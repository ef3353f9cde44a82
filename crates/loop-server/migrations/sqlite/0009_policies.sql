-- Retention policies, each attached to one target: a tenant (vault_id NULL), whose vaults
-- and whose subtree's vaults inherit it, or one vault. At most one per target.
CREATE TABLE policies (
    id                        TEXT PRIMARY KEY,
    tenant_id                 TEXT NOT NULL REFERENCES tenants(id),
    vault_id                  TEXT REFERENCES vaults(id),
    keep_rules                TEXT NOT NULL,
    prune_max_unused_percent  DOUBLE PRECISION NOT NULL,
    prune_grace_seconds       BIGINT NOT NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
CREATE UNIQUE INDEX policies_target ON policies (tenant_id, COALESCE(vault_id, ''));
CREATE INDEX policies_vault ON policies (vault_id);
