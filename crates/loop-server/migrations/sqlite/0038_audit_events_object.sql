-- The events about one object (a sign-up, a user), found without reading a tenant's whole
-- log: a sign-up's request becomes its person's when it makes their account.
CREATE INDEX audit_events_object ON audit_events(object_kind, object_id);
