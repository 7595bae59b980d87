-- Districts and municipalities (EKATTE), loaded from the embedded CSV at start-up.
CREATE TABLE regions (
    code    TEXT PRIMARY KEY,
    name_bg TEXT NOT NULL,
    name_en TEXT NOT NULL
);

CREATE TABLE municipalities (
    code        TEXT PRIMARY KEY,
    region_code TEXT NOT NULL REFERENCES regions (code),
    name_bg     TEXT NOT NULL,
    name_en     TEXT NOT NULL
);
CREATE INDEX municipalities_region ON municipalities (region_code, code);

CREATE TABLE agencies (
    id                UUID PRIMARY KEY,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    region_code       TEXT REFERENCES regions (code),
    municipality_code TEXT REFERENCES municipalities (code),
    contacts          JSONB NOT NULL DEFAULT '[]',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agencies_region_kind ON agencies (region_code, kind, id);
CREATE INDEX agencies_kind ON agencies (kind, id);

CREATE TABLE services (
    id                 UUID PRIMARY KEY,
    provider_agency_id UUID NOT NULL REFERENCES agencies (id),
    type               TEXT NOT NULL,
    name               TEXT NOT NULL,
    region_code        TEXT NOT NULL REFERENCES regions (code),
    municipality_code  TEXT NOT NULL REFERENCES municipalities (code),
    capacity           INTEGER NOT NULL CHECK (capacity >= 0),
    held_places        INTEGER NOT NULL DEFAULT 0 CHECK (held_places >= 0),
    occupied_places    INTEGER NOT NULL DEFAULT 0 CHECK (occupied_places >= 0),
    min_age            INTEGER NOT NULL,
    max_age            INTEGER NOT NULL,
    status             TEXT NOT NULL,
    version            BIGINT NOT NULL DEFAULT 1,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (min_age <= max_age)
);
CREATE INDEX services_search ON services (status, type, region_code);
CREATE INDEX services_provider ON services (provider_agency_id);

-- Places held or occupied for each referral, so that referral events applied out of order
-- (a withdrawal before its acceptance) never hold, release or occupy twice.
CREATE TABLE place_holds (
    referral_id      UUID PRIMARY KEY,
    service_id       UUID NOT NULL REFERENCES services (id),
    places           INTEGER NOT NULL CHECK (places > 0),
    state            TEXT NOT NULL CHECK (state IN ('HELD', 'RELEASED', 'OCCUPIED')),
    referral_version BIGINT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The national Agency for Social Assistance, which operates the system and registers the first agencies.
INSERT INTO agencies (id, kind, name)
VALUES ('00000000-0000-4000-8000-000000000001', 'AGENCY_KIND_NATIONAL_AUTHORITY', 'Agency for Social Assistance');
