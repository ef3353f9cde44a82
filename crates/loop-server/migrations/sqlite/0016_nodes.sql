-- Several server nodes may share one database (PostgreSQL). What each node kept in memory
-- moves here.

-- Sign-in failures over the sliding window, per account (a hash of what was typed) and
-- per client address (`i:<address>`); an attempt has one row for each, under one ID.
CREATE TABLE signin_failures (
    attempt_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (attempt_id, key)
);
CREATE INDEX signin_failures_key ON signin_failures(key, at);

-- Every key an attempt was counted against: an attempt takes its keys' rows first, which
-- serializes the attempts of one account or address across nodes. `audited_at`: when a
-- throttled attempt of an account and address pair (`<account>|<address>`) was last
-- audited (a flood is recorded once a minute).
CREATE TABLE signin_keys (
    key        TEXT PRIMARY KEY,
    seen_at    BIGINT NOT NULL,
    audited_at BIGINT NOT NULL DEFAULT 0
);

-- One provider tenant, however many nodes start on an empty database at once.
CREATE UNIQUE INDEX tenants_one_provider ON tenants(kind) WHERE kind = 'provider';

-- The node that ran (or is running) a job of the server, from its `node_id`.
ALTER TABLE jobs ADD COLUMN node TEXT;
