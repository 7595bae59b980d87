CREATE TABLE cases (
    id                           UUID PRIMARY KEY,
    owner_agency_id              UUID NOT NULL,
    status                       TEXT NOT NULL,
    current_setting              TEXT NOT NULL DEFAULT '',
    opened_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at                    TIMESTAMPTZ,
    close_reason                 TEXT,
    placement_referral_id        UUID,
    placement_service_id         UUID,
    placement_provider_agency_id UUID,
    placement_region_code        TEXT,
    placed_at                    TIMESTAMPTZ,
    version                      BIGINT NOT NULL DEFAULT 1
);
-- ListCases: an agency's cases, newest first, by keyset.
CREATE INDEX cases_owner ON cases (owner_agency_id, opened_at DESC, id DESC);

-- Pseudonymised: no names, no personal numbers.
CREATE TABLE children (
    id         UUID PRIMARY KEY,
    case_id    UUID NOT NULL REFERENCES cases (id),
    position   INTEGER NOT NULL,
    pseudonym  TEXT NOT NULL,
    birth_year INTEGER NOT NULL,
    sex        TEXT NOT NULL,
    needs      TEXT[] NOT NULL DEFAULT '{}',
    UNIQUE (case_id, position)
);

-- Referrals of each case, kept from referral events, so a case with a referral in progress is not closed.
CREATE TABLE case_referrals (
    referral_id UUID PRIMARY KEY,
    case_id     UUID NOT NULL REFERENCES cases (id),
    active      BOOLEAN NOT NULL,
    version     BIGINT NOT NULL
);
CREATE INDEX case_referrals_active ON case_referrals (case_id) WHERE active;
