-- How often a job ran again because requests joined it as it ended: past a few times, the
-- job ends and a new one (named in its summary as `continued_by`) takes those requests.
ALTER TABLE jobs ADD COLUMN reruns BIGINT NOT NULL DEFAULT 0;
