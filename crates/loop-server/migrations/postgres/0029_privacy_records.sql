-- A controller's records: data-subject requests, the provider's sub-processor register,
-- and personal-data archives ("download my data") with the job that makes each.

CREATE TABLE subject_requests (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    -- The person (a pseudonym once erased; the request's record stays as proof).
    user_id     TEXT NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL
                CHECK (kind IN ('access', 'rectification', 'erasure', 'restriction')),
    details     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    received_at BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    closed_at   BIGINT,
    closed_by   TEXT,
    outcome     TEXT CHECK (outcome IN ('done', 'refused')),
    action      TEXT
);
CREATE INDEX subject_requests_tenant ON subject_requests (tenant_id, state, due_at);
CREATE INDEX subject_requests_user ON subject_requests (user_id);

CREATE TABLE subprocessors (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    purpose  TEXT NOT NULL,
    location TEXT NOT NULL,
    added_at BIGINT NOT NULL
);

CREATE TABLE data_exports (
    id           TEXT PRIMARY KEY,
    -- Whose data it holds, and who asked (the person, or an admin of their tenant).
    user_id      TEXT NOT NULL REFERENCES users(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    requested_by TEXT NOT NULL,
    job_id       TEXT,
    created_at   BIGINT NOT NULL,
    ready_at     BIGINT,
    -- Downloadable until then; afterwards the archive is deleted.
    expires_at   BIGINT,
    size         BIGINT,
    sha256       TEXT,
    archive      BYTEA
);
CREATE INDEX data_exports_user ON data_exports (user_id);
CREATE INDEX data_exports_expiry ON data_exports (expires_at);
