-- The reports' read model, learnt from events only.

-- Agencies as far as reports need them: which district an RDSA answers for.
CREATE TABLE agencies (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,
    region_code TEXT NOT NULL
);

-- Each referral as its newest applied event left it.
CREATE TABLE referrals (
    id                    UUID PRIMARY KEY,
    sender_agency_id      UUID NOT NULL,
    sender_region_code    TEXT NOT NULL,
    receiving_agency_id   UUID NOT NULL,
    receiving_region_code TEXT NOT NULL,
    foster_team_agency_id UUID NOT NULL,
    service_id            UUID NOT NULL,
    status                TEXT NOT NULL,
    ack_deadline          TIMESTAMPTZ,
    version               BIGINT NOT NULL
);
CREATE INDEX referrals_sender_region ON referrals (sender_region_code, status);
CREATE INDEX referrals_receiving_region ON referrals (receiving_region_code, status);

-- Every step of every referral, once per version: the figures are counted from here, so a step brought
-- twice (a redelivered event) is still one row.
CREATE TABLE steps (
    referral_id     UUID NOT NULL,
    version         BIGINT NOT NULL,
    action          TEXT NOT NULL,
    from_status     TEXT,
    to_status       TEXT NOT NULL,
    actor_agency_id UUID,
    at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (referral_id, version)
);
CREATE INDEX steps_action_at ON steps (action, at);
