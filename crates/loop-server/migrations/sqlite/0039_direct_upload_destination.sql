-- The destination an upload's URL writes to. A promotion may move the vault to another
-- destination before the upload ends, and its staging objects are where the URL put them.
-- Uploads begun before this column (NULL) are taken to be at the vault's destination.
ALTER TABLE direct_uploads ADD COLUMN destination TEXT;
