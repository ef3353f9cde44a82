-- How many requests for a job's work joined it while it was open (queued or running). A
-- replication reads it before it looks at the vault and ends only if no request came
-- since; otherwise it runs again under the same ID, so every request it answered is met.
ALTER TABLE jobs ADD COLUMN asked_again BIGINT NOT NULL DEFAULT 0;
