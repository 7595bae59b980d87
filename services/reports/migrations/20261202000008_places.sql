-- The directory's services as their newest event (or the rebuild) left them: their places now, for the
-- free places beside each stalled referral and the places by district and type.
CREATE TABLE services (
    id                 UUID PRIMARY KEY,
    provider_agency_id UUID NOT NULL,
    region_code        TEXT NOT NULL,
    service_type       TEXT NOT NULL,
    status             TEXT NOT NULL,
    capacity           INT NOT NULL,
    free_places        INT NOT NULL,
    held_places        INT NOT NULL,
    occupied_places    INT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE INDEX services_free ON services (service_type, free_places DESC) WHERE status = 'SERVICE_STATUS_ACTIVE';
CREATE INDEX services_region ON services (region_code);

-- The places a referral asks for (its children); a referral kept before this was known asked for one at
-- least.
ALTER TABLE referrals ADD COLUMN places INT NOT NULL DEFAULT 1;
