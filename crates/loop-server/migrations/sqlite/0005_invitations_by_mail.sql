-- no-transaction
-- An e-mail address identifies one account, but an invitation to an address that already
-- has an account elsewhere must look exactly like any other invitation to the admin who
-- sent it. So the address is unique among accounts (active or disabled) only, and invited
-- rows may share it; the invitation e-mail tells the address's owner, and nobody else.
-- SQLite cannot drop a column constraint, so the table is rebuilt (the documented
-- procedure: foreign keys off, copy, swap, check, on).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_new (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    email            TEXT NOT NULL,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    business_address TEXT NOT NULL DEFAULT '',
    password_hash    TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'invited', 'disabled')),
    invite_hash      TEXT UNIQUE,
    totp_secret      TEXT,
    totp_enabled     BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    totp_last_step   BIGINT NOT NULL DEFAULT 0,
    -- When the current invite token was issued (it is valid 7 days from then).
    invite_issued_at BIGINT,
    -- A new address waiting for its owner's confirmation, with the confirmation token.
    pending_email    TEXT,
    email_token_hash TEXT UNIQUE,
    email_token_issued_at BIGINT
);
INSERT INTO users_new (id, tenant_id, email, first_name, last_name, business_address,
    password_hash, status, invite_hash, totp_secret, totp_enabled, created_at, updated_at,
    totp_last_step, invite_issued_at)
SELECT id, tenant_id, email, first_name, last_name, business_address, password_hash, status,
    invite_hash, totp_secret, totp_enabled, created_at, updated_at, totp_last_step,
    CASE WHEN invite_hash IS NULL THEN NULL ELSE created_at END
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_tenant ON users(tenant_id);
CREATE UNIQUE INDEX users_account_email ON users(email) WHERE status <> 'invited';
CREATE INDEX users_email ON users(email);

-- Mail waiting to go out. A row names what to send and to whom (a user); the message,
-- and any secret it carries, is made when it is sent, so nothing secret rests here.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('invitation', 'email_change')),
    user_id         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'dropped', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    finished_at     BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox(state, next_attempt_at);
COMMIT;
PRAGMA foreign_key_check;
PRAGMA foreign_keys = ON;
