-- When the processor made the subscription's payment method (its setup's `created`, in
-- milliseconds): a setup event delivered late, after a newer card was added, does not put
-- the older card back.
ALTER TABLE subscriptions ADD COLUMN payment_method_created BIGINT;
