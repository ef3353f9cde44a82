-- A protected item's upload limit in KiB/s (NULL: none), applied by its agent to the item's
-- backups on top of the agent's own limit.
ALTER TABLE protected_items ADD COLUMN upload_limit_kib BIGINT;
