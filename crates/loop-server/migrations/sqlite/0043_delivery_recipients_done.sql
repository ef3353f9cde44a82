-- Each e-mail recipient gets a message of their own: the ones (by their place on the
-- target, bit 0 the first) who have it or refused it for good, so a try after a passing
-- failure sends only to the rest; and the relay's answers to those it refused for good
-- (a JSON array, naming them by their place), which the delivery's end still reports.
ALTER TABLE deliveries ADD COLUMN recipients_done BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN refused TEXT;
