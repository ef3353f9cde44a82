-- The time zone a person reads times in (an IANA name); NULL: their tenant's.
ALTER TABLE users ADD COLUMN time_zone TEXT;
