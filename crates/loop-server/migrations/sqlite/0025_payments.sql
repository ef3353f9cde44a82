-- The payment processor's side of billing: each attempt to charge an invoice and what came
-- of it, the processor events already handled, and the lookup from the processor's customer
-- to its tenant.

-- One row per attempt to charge an invoice with the customer's payment method. 'pending' is
-- written before the processor is asked; a pending attempt is asked again with the same
-- idempotency key (the invoice and the attempt), so a lost answer never charges twice.
CREATE TABLE charges (
    id              TEXT PRIMARY KEY,
    invoice_id      TEXT NOT NULL REFERENCES invoices(id),
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    attempt         BIGINT NOT NULL,
    -- The processor's payment-method token charged (never a card number).
    payment_method  TEXT NOT NULL,
    amount_cents    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    -- The processor's payment intent.
    processor_ref   TEXT,
    failure_code    TEXT,
    failure_message TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (invoice_id, attempt)
);
CREATE INDEX charges_tenant ON charges (tenant_id, created_at);
CREATE INDEX charges_ref ON charges (processor_ref);

-- Webhook events handled (the processor may deliver one more than once).
CREATE TABLE processor_events (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX subscriptions_processor_customer ON subscriptions (processor_customer);
