-- Each tenant's IANA time zone: its schedules and reports run in it. New tenants take their
-- parent's unless told otherwise; tenants that exist already are on UTC.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
