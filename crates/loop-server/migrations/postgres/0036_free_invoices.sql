-- An invoice with nothing to pay is paid as it is issued; those issued open before never
-- fell due as paid and would have suspended their tenant.
UPDATE invoices SET state = 'paid', paid_at = issued_at WHERE state = 'open' AND total_cents = 0;
