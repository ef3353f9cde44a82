-- A policy may be attached to one protected item instead (vault_id NULL): its keep rules
-- then judge that item's snapshots (tagged `item:<id>`) in place of the vault's policy.
ALTER TABLE policies ADD COLUMN item_id TEXT REFERENCES protected_items(id);
DROP INDEX policies_target;
CREATE UNIQUE INDEX policies_target
    ON policies (tenant_id, COALESCE(vault_id, ''), COALESCE(item_id, ''));
CREATE INDEX policies_item ON policies (item_id);
