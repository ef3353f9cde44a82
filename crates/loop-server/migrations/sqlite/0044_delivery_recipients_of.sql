-- Which recipient list `recipients_done` counts places in (a fingerprint of it): once the
-- target's list changed (an edit, an erasure), a try starts over rather than skip someone.
ALTER TABLE deliveries ADD COLUMN recipients_of BIGINT;
