-- The digests sent to RDSAs: a scheduled one once per RDSA and slot (the unique key is what makes several
-- instances send it once), one asked for each time it is asked (no slot).
CREATE TABLE digests (
    id             UUID PRIMARY KEY,
    rdsa_agency_id UUID NOT NULL,
    region_code    TEXT NOT NULL,
    scheduled_for  TIMESTAMPTZ,
    period_start   TIMESTAMPTZ NOT NULL,
    period_end     TIMESTAMPTZ NOT NULL,
    sent_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (rdsa_agency_id, scheduled_for)
);
