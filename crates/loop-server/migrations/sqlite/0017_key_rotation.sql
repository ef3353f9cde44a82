-- Tenant key rotation (a job): the key being rotated to, until every managed vault of the
-- tenant has a key slot for it, and the key rotated from, until every slot it opens is
-- removed. Wrapped under the master key like `wrapped`, and deleted with the row
-- (crypto-shredding).
ALTER TABLE tenant_keys ADD COLUMN next_wrapped TEXT;
ALTER TABLE tenant_keys ADD COLUMN previous_wrapped TEXT;
