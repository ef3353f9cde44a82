-- What each processor event was about (a payment method's ID for `payment_method.detached`),
-- so a card's setup whose event arrives after its removal's does not put it on file.
ALTER TABLE processor_events ADD COLUMN object_id TEXT;
CREATE INDEX processor_events_object ON processor_events (kind, object_id);
