-- A vault's retention lock: no stored object (but lock markers and prune plans) may be
-- replaced or deleted before it is this many days old, counted from `vault_objects.created_at`
-- (the server's own record of its arrival). NULL: no lock. It can only grow.
ALTER TABLE vaults ADD COLUMN retention_lock_days BIGINT;
