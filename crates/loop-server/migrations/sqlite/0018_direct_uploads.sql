-- Direct uploads: a client puts a pack straight into the destination with a presigned URL,
-- at `staging/ID` beside the vault's objects, and the server checks it and moves it into
-- place when the client completes the upload. The row stays until the URL has expired, so
-- the sweep can remove what a reused URL writes after completion.
CREATE TABLE direct_uploads (
    id            TEXT PRIMARY KEY,
    vault_id      TEXT NOT NULL REFERENCES vaults(id),
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    token_id      TEXT NOT NULL,
    -- The length and BLAKE3 hash (hex) the client announced.
    size          BIGINT NOT NULL,
    hash          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- When the presigned URL stops working.
    expires_at    BIGINT NOT NULL,
    completed_at  BIGINT
);
CREATE INDEX direct_uploads_expiry ON direct_uploads (expires_at);
