-- A password reset: the hash of the code in the last reset mail, and when it was mailed
-- (it works for an hour, once).
ALTER TABLE users ADD COLUMN reset_hash TEXT;
ALTER TABLE users ADD COLUMN reset_issued_at BIGINT;
CREATE UNIQUE INDEX users_reset_hash ON users (reset_hash);
