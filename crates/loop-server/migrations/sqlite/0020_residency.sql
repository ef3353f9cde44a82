-- Data residency: the jurisdictions a tenant allows (space-separated labels; NULL sets
-- nothing, so the tenant has what its ancestors allow). Allowing one admits everything
-- within it; a tenant may use what every set on its path from the provider admits.
ALTER TABLE tenants ADD COLUMN jurisdictions TEXT;
