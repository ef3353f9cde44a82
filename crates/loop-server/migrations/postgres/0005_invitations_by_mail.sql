-- An e-mail address identifies one account, but an invitation to an address that already
-- has an account elsewhere must look exactly like any other invitation to the admin who
-- sent it. So the address is unique among accounts (active or disabled) only, and invited
-- rows may share it; the invitation e-mail tells the address's owner, and nobody else.
-- (The SQLite migration of the same number rebuilds the table to the same end.)
ALTER TABLE users DROP CONSTRAINT users_email_key;
-- When the current invite token was issued (it is valid 7 days from then).
ALTER TABLE users ADD COLUMN invite_issued_at BIGINT;
-- A new address waiting for its owner's confirmation, with the confirmation token.
ALTER TABLE users ADD COLUMN pending_email TEXT;
ALTER TABLE users ADD COLUMN email_token_hash TEXT UNIQUE;
ALTER TABLE users ADD COLUMN email_token_issued_at BIGINT;
UPDATE users SET invite_issued_at = created_at WHERE invite_hash IS NOT NULL;
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
