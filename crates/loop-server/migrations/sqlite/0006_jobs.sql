-- Durable jobs: work the server (or an agent) does on its own, from queued to done.
-- A runner claims a job by a conditional update that sets its lease and raises `fence`;
-- every later write of the job names the fence it holds, so a runner that lost its lease
-- (paused, cut off) has its writes refused once another runner took the job over.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    kind             TEXT NOT NULL,
    target_kind      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded',
                         'succeeded-with-warnings', 'failed', 'cancelled', 'missed',
                         'skipped', 'abandoned')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    scheduled_at     BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    fence            BIGINT NOT NULL DEFAULT 0,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    bytes_done       BIGINT NOT NULL DEFAULT 0,
    bytes_total      BIGINT,
    files_done       BIGINT NOT NULL DEFAULT 0,
    files_total      BIGINT,
    params           TEXT NOT NULL DEFAULT '{}',
    summary          TEXT,
    error            TEXT,
    trigger_kind     TEXT NOT NULL,
    started_by_id    TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(state, scheduled_at);
CREATE INDEX jobs_tenant ON jobs(tenant_id, created_at);
CREATE INDEX jobs_target ON jobs(target_id, kind, state);

CREATE TABLE job_log (
    job_id  TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    level   TEXT NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
