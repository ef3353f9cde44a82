-- Notification targets of a tenant: an e-mail list or a webhook, with matchers (least
-- severity, kinds) and whether the events of the tenants below are heard too.
CREATE TABLE notify_targets (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    enabled          BIGINT NOT NULL DEFAULT 1,
    min_severity     TEXT NOT NULL CHECK (min_severity IN ('info', 'warning', 'error')),
    -- JSON array of event kinds; empty means every kind.
    kinds            TEXT NOT NULL DEFAULT '[]',
    include_children BIGINT NOT NULL,
    summary          TEXT NOT NULL CHECK (summary IN ('off', 'daily', 'weekly')),
    -- When the next summary report is due; moved on by a conditional update, so of several
    -- nodes exactly one makes each report.
    summary_next_at  BIGINT,
    -- JSON: {"recipients": [...], "language": "en"} or {"url": "..."}.
    settings         TEXT NOT NULL,
    -- A webhook's signing key, wrapped by the master key (it must be usable, so it cannot
    -- be a hash).
    secret_wrapped   TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT
);
CREATE INDEX notify_targets_tenant ON notify_targets(tenant_id);

-- What happened. `dedupe_key` makes an event that periodic checks find (a failed job, a
-- missed item) be raised once, whichever node finds it first.
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    subject_kind TEXT,
    subject_id   TEXT,
    message      TEXT NOT NULL,
    details      TEXT NOT NULL DEFAULT '{}',
    dedupe_key   TEXT UNIQUE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_tenant ON events(tenant_id, created_at);

-- One event on its way to one target: a durable unit of work, taken by one sender at a
-- time (a claim that lapses if that node dies), retried with a growing delay.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    target_id       TEXT NOT NULL REFERENCES notify_targets(id),
    event_id        TEXT NOT NULL REFERENCES events(id),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'succeeded', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    finished_at     BIGINT,
    last_error      TEXT,
    response_status BIGINT
);
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);
CREATE INDEX deliveries_target ON deliveries(target_id, created_at);

-- Jobs that ended, for the check that raises their events.
CREATE INDEX jobs_finished ON jobs(state, finished_at);
