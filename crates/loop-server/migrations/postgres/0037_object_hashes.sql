-- The BLAKE3 hash (hex) of each object as it was stored, checked against the upload: when a
-- replica's copy and the primary's differ, the one that still has it is the right one.
-- NULL for objects stored before it was kept.
ALTER TABLE vault_objects ADD COLUMN blake3 TEXT;
