-- The in-app inbox. One row per (event, recipient): a redelivered event tells no one twice.
CREATE TABLE notifications (
    id                  UUID PRIMARY KEY,
    sequence            BIGSERIAL NOT NULL UNIQUE,
    recipient_agency_id UUID NOT NULL,
    kind                TEXT NOT NULL,
    referral_id         UUID NOT NULL,
    event_id            UUID NOT NULL,
    title               TEXT NOT NULL,
    body                TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    read_at             TIMESTAMPTZ,
    UNIQUE (event_id, recipient_agency_id)
);
CREATE INDEX notifications_inbox ON notifications (recipient_agency_id, sequence DESC);
CREATE INDEX notifications_unread ON notifications (recipient_agency_id, sequence DESC) WHERE read_at IS NULL;
