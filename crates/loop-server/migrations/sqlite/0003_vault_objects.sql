-- Every object of a vault that the server stored, is storing or is deleting. The primary key
-- makes each name create-once across every server node sharing this database (Garage ignores
-- conditional puts, so the destination cannot be asked), and the sizes here are what
-- `vaults.used_bytes` counts.
CREATE TABLE vault_objects (
    vault_id     TEXT NOT NULL REFERENCES vaults(id),
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    -- The stored object's size (0 while a first upload streams).
    size         BIGINT NOT NULL,
    -- Bytes reserved for the upload in flight (0 when none). A vault's `used_bytes` is the
    -- sum of `size + reserved` over its rows.
    reserved     BIGINT NOT NULL,
    -- 'writing' while an upload streams, 'stored' once visible, 'deleting' while removed.
    state        TEXT NOT NULL CHECK (state IN ('writing', 'stored', 'deleting')),
    -- The token that wrote it: a lock marker may be rewritten or deleted only by its writer
    -- (or a manage token). NULL for objects found in storage by a reconcile.
    owner_token  TEXT,
    -- A random ID per claim: every later write of the request that made the claim checks it
    -- (a fencing token), so a request that outlived its lease cannot change the row.
    claim        TEXT NOT NULL,
    -- Until when a 'writing' or 'deleting' claim holds; after it, another request may take over.
    lease_until  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (vault_id, kind, name)
);
