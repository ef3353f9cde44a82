-- Privacy: the versions of the privacy policy and who acknowledged which, consent to
-- marketing (the state on the user, every change kept), one-click unsubscribe links,
-- restriction of processing, and the provider's announcements.

CREATE TABLE privacy_policies (
    version      TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    summary      TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
CREATE INDEX privacy_policies_published ON privacy_policies (published_at);

CREATE TABLE policy_acknowledgements (
    user_id TEXT NOT NULL REFERENCES users(id),
    version TEXT NOT NULL REFERENCES privacy_policies(version),
    at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);

-- Off until the user gives it.
ALTER TABLE users ADD COLUMN marketing_consent BIGINT NOT NULL DEFAULT 0;
-- Since when processing of the user's data is restricted (none: not restricted).
ALTER TABLE users ADD COLUMN restricted_at BIGINT;

CREATE TABLE consent_changes (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    purpose        TEXT NOT NULL CHECK (purpose = 'marketing'),
    given          BIGINT NOT NULL,
    -- The privacy policy in force when the change was made (none before one is published).
    policy_version TEXT,
    -- 'user' (the person, signed in) or 'unsubscribe' (a message's one-click link).
    via            TEXT NOT NULL CHECK (via IN ('user', 'unsubscribe')),
    at             BIGINT NOT NULL
);
CREATE INDEX consent_changes_user ON consent_changes (user_id, at);

-- The keyed hash of each unsubscribe link a marketing message carried.
CREATE TABLE unsubscribe_links (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX unsubscribe_links_user ON unsubscribe_links (user_id);

CREATE TABLE announcements (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_by    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    recipients BIGINT NOT NULL
);
