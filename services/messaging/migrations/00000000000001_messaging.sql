-- The transactional outbox and the consumer inbox; every service has both, in its own schema.

-- Events written in the same transaction as the change they announce; the relay publishes them with
-- publisher confirms and marks them published only after the broker confirmed.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    envelope     BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
-- The relay only ever looks for what is still to publish.
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- Ids of the events this service has applied, recorded in the same transaction as their effect,
-- so a redelivered event has no second effect.
CREATE TABLE processed_events (
    event_id     UUID PRIMARY KEY,
    event_type   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
