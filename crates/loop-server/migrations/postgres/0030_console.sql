-- The console's sign-in in two steps: a password that was right, waiting for the
-- authenticator code. The browser holds the secret (a cookie of five minutes); the row holds
-- its hash, whose account it is, and how many codes were tried.
CREATE TABLE signin_challenges (
    secret_hash TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    remember    BIGINT NOT NULL,
    tries       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX signin_challenges_expiry ON signin_challenges (expires_at);
