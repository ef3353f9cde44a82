-- Self-service sign-up: plans offered on it, and sign-ups waiting for the code mailed to
-- their address. A row holds the would-be administrator's personal data only until it is
-- confirmed (then the new tenant and user hold it, and the row is deleted) or expires (then
-- the lifecycle timer deletes it).

ALTER TABLE plans ADD COLUMN signup BIGINT NOT NULL DEFAULT 0;

CREATE TABLE signups (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    organisation     TEXT NOT NULL,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    business_address TEXT NOT NULL,
    language         TEXT NOT NULL,
    -- The plan chosen (no reference: a plan deleted meanwhile fails the confirmation).
    plan_id          TEXT NOT NULL,
    -- Argon2id, as for users.
    password_hash    TEXT NOT NULL,
    -- The keyed hash of the code last mailed (none before the mail is made).
    code_hash        TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX signups_code ON signups (code_hash);
CREATE INDEX signups_expiry ON signups (expires_at);
