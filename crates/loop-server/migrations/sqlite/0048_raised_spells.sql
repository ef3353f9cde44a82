-- The dedupe keys of events that report a lasting state (a missed item, a quiet device, a
-- replica behind), kept longer than the events: a spell outlasting `notify.keep_days` is
-- not raised again when its event is trimmed.
CREATE TABLE raised_spells (
    key       TEXT PRIMARY KEY,
    raised_at BIGINT NOT NULL
);
CREATE INDEX raised_spells_at ON raised_spells (raised_at);
