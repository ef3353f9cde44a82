-- A partner's (or the provider's) look of the console: product name, colour (#rrggbb) and
-- logo (a PNG, base64). The nearest one up the tenant tree applies.
CREATE TABLE brandings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    product_name TEXT NOT NULL,
    accent TEXT NOT NULL,
    logo_png TEXT,
    updated_at BIGINT NOT NULL
);
