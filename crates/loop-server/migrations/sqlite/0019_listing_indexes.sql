-- Listings page through a tenant subtree in (tenant path, then their own columns) order.
-- With these, a page walks the tenants' path index and each tenant's rows in order, instead
-- of sorting the whole table for every page (docs/BENCHMARKS.md, "Scale-out": 100,000
-- devices). Each replaces an index on `tenant_id` alone.
DROP INDEX users_tenant;
DROP INDEX vaults_tenant;
DROP INDEX notify_targets_tenant;
CREATE INDEX users_tenant ON users(tenant_id, email, id);
CREATE INDEX vaults_tenant ON vaults(tenant_id, name, id);
CREATE INDEX notify_targets_tenant ON notify_targets(tenant_id, name, id);
CREATE INDEX devices_tenant ON devices(tenant_id, name, id);
CREATE INDEX tokens_tenant ON tokens(tenant_id, created_at, id);
CREATE INDEX protected_items_tenant ON protected_items(tenant_id, device_id, name, id);
