-- Single-use enrolment codes (stored as hashes) that register a machine as a device.
CREATE TABLE enrolment_codes (
    code_hash   TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   TEXT
);

-- The version of the agent that last reported from a device.
ALTER TABLE devices ADD COLUMN agent_version TEXT;
