-- Plans, subscriptions, metered usage and invoices (the subscription lifecycle), each user's
-- language for the mail the service sends them, and mail that carries parameters.

-- What a provider or partner (the issuer) sells: a monthly price that includes `quota_bytes`
-- of stored data (NULL: unlimited) and at most `device_limit` devices (NULL: any number).
-- Stored data above the quota is billed per GiB-month at `extra_gib_cents` (NULL: not billed).
CREATE TABLE plans (
    id              TEXT PRIMARY KEY,
    issuer_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    quota_bytes     BIGINT,
    device_limit    BIGINT,
    price_cents     BIGINT NOT NULL,
    extra_gib_cents BIGINT,
    -- ISO 4217, upper case.
    currency        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (issuer_id, name)
);

-- One per billed customer tenant. Times are the server clock's; the lifecycle timer moves a
-- subscription from state to state (docs/OPERATIONS.md, "Subscriptions").
CREATE TABLE subscriptions (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants(id),
    plan_id        TEXT NOT NULL REFERENCES plans(id),
    state          TEXT NOT NULL
        CHECK (state IN ('trial', 'active', 'past-due', 'suspended', 'terminated')),
    -- 'card': charged through the payment processor; 'invoice': paid by transfer, the
    -- issuer records each payment.
    collection     TEXT NOT NULL CHECK (collection IN ('card', 'invoice')),
    -- The processor's customer and payment-method tokens (never a card number).
    processor_customer TEXT,
    payment_method TEXT,
    trial_ends_at  BIGINT NOT NULL,
    -- The billing period under way (NULL during the trial and while suspended).
    period_start   BIGINT,
    period_end     BIGINT,
    suspended_at   BIGINT,
    -- Why it is suspended or terminated: trial-ended, unpaid, ended.
    reason         TEXT,
    -- Ended by the customer: terminated at this time.
    ends_at        BIGINT,
    -- Terminated at this time unless paid meanwhile.
    terminate_at   BIGINT,
    terminated_at  BIGINT,
    -- Warnings sent for the step under way (JSON list of names), so each goes once.
    warned         TEXT NOT NULL DEFAULT '[]',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX subscriptions_plan ON subscriptions (plan_id);

-- What a billed tenant used on a day (UTC), measured once that day.
CREATE TABLE usage_days (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    day          TEXT NOT NULL,
    stored_bytes BIGINT NOT NULL,
    devices      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Numbered per issuer without gaps; one per subscription period.
CREATE TABLE invoices (
    id           TEXT PRIMARY KEY,
    issuer_id    TEXT NOT NULL REFERENCES tenants(id),
    number       BIGINT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    bill_to      TEXT NOT NULL,
    plan_id      TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end   BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    -- JSON list of {description, quantity, unit_cents, amount_cents}.
    lines        TEXT NOT NULL,
    total_cents  BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'paid')),
    issued_at    BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    paid_at      BIGINT,
    payment_reference TEXT,
    UNIQUE (issuer_id, number),
    UNIQUE (tenant_id, period_start)
);
CREATE INDEX invoices_open ON invoices (tenant_id, state, due_at);

ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT 'en';

-- The outbox's kinds are checked in code now, and a message may carry parameters (JSON).
CREATE TABLE mail_outbox_new (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    params          TEXT NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'dropped', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    finished_at     BIGINT,
    last_error      TEXT
);
INSERT INTO mail_outbox_new (id, kind, user_id, state, attempts, created_at, next_attempt_at,
                             claimed_until, finished_at, last_error)
    SELECT id, kind, user_id, state, attempts, created_at, next_attempt_at, claimed_until,
           finished_at, last_error FROM mail_outbox;
DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox(state, next_attempt_at);
