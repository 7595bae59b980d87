-- What this service knows of each service besides its free places, from the directory's events, so that
-- "the services that fit" a case's children is one local query. NULL until an event told it; the ages stay
-- NULL for services whose events were published before ages were carried (such a service is not suggested).
ALTER TABLE service_places
    ADD COLUMN provider_agency_id UUID,
    ADD COLUMN region_code        TEXT,
    ADD COLUMN service_type       TEXT,
    ADD COLUMN status             TEXT,
    ADD COLUMN min_age            SMALLINT,
    ADD COLUMN max_age            SMALLINT;

CREATE INDEX service_places_fitting ON service_places (service_type, free_places)
    WHERE status = 'SERVICE_STATUS_ACTIVE';

-- What "fitting" means for a search (the districts the sender chose, empty for those of the services asked;
-- the types of the services asked), its current round, and whether that round ran out. `version` increases
-- with every change the search's events announce.
ALTER TABLE searches
    ADD COLUMN region_codes  TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN service_types TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN round         SMALLINT NOT NULL DEFAULT 1,
    ADD COLUMN exhausted_at  TIMESTAMPTZ,
    ADD COLUMN version       BIGINT NOT NULL DEFAULT 1;

-- Every round of a search: when it was sent (its key, for a retry of ExtendSearch), when it ran out and
-- what was suggested then.
CREATE TABLE search_rounds (
    search_id             UUID NOT NULL REFERENCES searches (id),
    round                 SMALLINT NOT NULL,
    idempotency_key       TEXT NOT NULL,
    started_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    exhausted_at          TIMESTAMPTZ,
    suggested_service_ids UUID[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (search_id, round),
    UNIQUE (search_id, idempotency_key)
);

INSERT INTO search_rounds (search_id, round, idempotency_key, started_at)
SELECT id, 1, idempotency_key, created_at FROM searches;

-- The round of its search a referral was sent in; NULL for a referral sent alone.
ALTER TABLE referrals ADD COLUMN search_round SMALLINT;
UPDATE referrals SET search_round = 1 WHERE search_id IS NOT NULL;
