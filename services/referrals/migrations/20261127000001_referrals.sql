CREATE TABLE referrals (
    id                       UUID PRIMARY KEY,
    case_id                  UUID NOT NULL,
    sender_agency_id         UUID NOT NULL,
    sender_region_code       TEXT NOT NULL,
    service_id               UUID NOT NULL,
    receiving_agency_id      UUID NOT NULL,
    receiving_region_code    TEXT NOT NULL,
    foster_team_agency_id    UUID NOT NULL,
    receiving_rdsa_agency_id UUID,
    places                   INTEGER NOT NULL CHECK (places > 0),
    legal_basis_kind         TEXT NOT NULL,
    legal_basis_number       TEXT NOT NULL,
    legal_basis_date         DATE NOT NULL,
    legal_basis_court        TEXT NOT NULL DEFAULT '',
    reason                   TEXT NOT NULL,
    status                   TEXT NOT NULL,
    ack_deadline             TIMESTAMPTZ NOT NULL,
    escalated_at             TIMESTAMPTZ,
    decline_reason           TEXT,
    withdraw_reason          TEXT,
    resolution_comment       TEXT NOT NULL DEFAULT '',
    -- Whether the directory has applied this referral's hold (learnt from its capacity events); until it
    -- has, the places count against the service's free places here.
    hold_applied             BOOLEAN NOT NULL DEFAULT false,
    idempotency_key          TEXT NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    version                  BIGINT NOT NULL DEFAULT 1,
    UNIQUE (sender_agency_id, idempotency_key)
);
CREATE INDEX referrals_outgoing ON referrals (sender_agency_id, created_at DESC, id DESC);
CREATE INDEX referrals_due ON referrals (ack_deadline)
    WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND escalated_at IS NULL;
CREATE INDEX referrals_pending_holds ON referrals (service_id)
    WHERE NOT hold_applied AND status IN ('REFERRAL_STATUS_ACCEPTED', 'REFERRAL_STATUS_PLACED');

-- Required acknowledgers: the receiving service's agency and the receiving district's foster-care team
-- (one row when they are the same agency). Also the index of INCOMING lists.
CREATE TABLE referral_parties (
    referral_id        UUID NOT NULL REFERENCES referrals (id),
    agency_id          UUID NOT NULL,
    receiving_provider BOOLEAN NOT NULL,
    foster_care_team   BOOLEAN NOT NULL,
    acknowledged_at    TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (referral_id, agency_id)
);
CREATE INDEX referral_parties_incoming ON referral_parties (agency_id, created_at DESC, referral_id DESC);

-- Every step: what, who, when.
CREATE TABLE referral_history (
    referral_id     UUID NOT NULL REFERENCES referrals (id),
    version         BIGINT NOT NULL,
    action          TEXT NOT NULL,
    from_status     TEXT NOT NULL,
    to_status       TEXT NOT NULL,
    actor_agency_id UUID,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (referral_id, version)
);

-- Free places of the services referred to, as last announced by the directory.
CREATE TABLE service_places (
    service_id  UUID PRIMARY KEY,
    free_places INTEGER NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
