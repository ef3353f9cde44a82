-- Two copies of one vault on one remote (pushed to two of its vaults) are two places of an
-- erasure: the place is unique with the remote's vault, not without it.
ALTER TABLE erasure_locations DROP CONSTRAINT erasure_locations_vault_id_kind_place_key;
CREATE UNIQUE INDEX erasure_locations_place
    ON erasure_locations (vault_id, kind, place, COALESCE(remote_vault_id, ''));
