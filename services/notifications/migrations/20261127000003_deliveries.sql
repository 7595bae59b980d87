-- E-mail and webhook deliveries, per notification and endpoint.

-- The directory's notification endpoints, as last announced ("agency.endpoints_changed"). `enabled` is also
-- turned off here when deliveries to an endpoint keep failing (and the directory is told).
CREATE TABLE endpoints (
    id             UUID PRIMARY KEY,
    agency_id      UUID NOT NULL,
    channel        TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    address        TEXT NOT NULL,
    event_types    TEXT[] NOT NULL,
    language       TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    secret_version INTEGER NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_agency ON endpoints (agency_id);

-- The newest set of each agency's endpoints applied, so an older announcement never overwrites a newer one.
CREATE TABLE endpoint_sets (
    agency_id UUID PRIMARY KEY,
    version   BIGINT NOT NULL
);

-- Notices that are not about a referral (an endpoint was disabled) have none.
ALTER TABLE notifications ALTER COLUMN referral_id DROP NOT NULL;

CREATE TABLE deliveries (
    id              UUID PRIMARY KEY,
    notification_id UUID NOT NULL REFERENCES notifications (id),
    endpoint_id     UUID NOT NULL,
    channel         TEXT NOT NULL,
    address         TEXT NOT NULL,
    -- E-mail subject (empty for webhooks) and the e-mail text or webhook JSON, rendered when created.
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When PENDING: when it is next due. A claimed delivery is pushed a lease ahead, so a delivery whose
    -- sender died mid-attempt is tried again after the lease by any instance.
    next_attempt_at TIMESTAMPTZ,
    give_up_at      TIMESTAMPTZ NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    last_attempt_at TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (notification_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id) WHERE status = 'PENDING';
CREATE INDEX deliveries_by_status ON deliveries (status, created_at DESC, id DESC);

-- Every attempt: when, how it ended.
CREATE TABLE delivery_attempts (
    delivery_id UUID NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    succeeded   BOOLEAN NOT NULL,
    detail      TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
