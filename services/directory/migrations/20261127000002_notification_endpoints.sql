-- Where each agency is told of events besides its in-app inbox. The whole set is announced after every
-- change ("agency.endpoints_changed", numbered by endpoints_version), so the notifications service's copy
-- never goes back to an older set.
ALTER TABLE agencies ADD COLUMN endpoints_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE notification_endpoints (
    id              UUID PRIMARY KEY,
    agency_id       UUID NOT NULL REFERENCES agencies (id),
    channel         TEXT NOT NULL CHECK (channel IN ('NOTIFICATION_CHANNEL_EMAIL', 'NOTIFICATION_CHANNEL_WEBHOOK')),
    address         TEXT NOT NULL,
    event_types     TEXT[] NOT NULL DEFAULT '{}',
    language        TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    disabled_reason TEXT NOT NULL DEFAULT '',
    -- The webhook secret is derived from (id, secret_version) and never stored.
    secret_version  INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (agency_id, channel, address)
);
CREATE INDEX notification_endpoints_agency ON notification_endpoints (agency_id, created_at, id);
