-- Audit event format 2: personal data (IP, user agent) leaves the hashed part of an event
-- for audit_personal; the hash covers only a salted commitment to it (personal_hash), so
-- erasing a person's rows leaves every chain verifiable. Events written before this
-- migration stay version 1, with their IP in audit_events.ip and inside their hash.
ALTER TABLE audit_events ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN personal_hash TEXT NOT NULL DEFAULT '';

CREATE TABLE audit_personal (
    tenant_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    -- The person the data belongs to, so an erasure finds it (NULL: nobody known).
    user_id     TEXT,
    -- 32 random bytes (hex) that make the commitment unguessable once this row is gone.
    salt        TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, seq) REFERENCES audit_events(tenant_id, seq)
);
CREATE INDEX audit_personal_user ON audit_personal(user_id);
