-- Services and providers imported from the national register keep the register's own id, which every
-- later import is keyed on; services registered through the API have none.
ALTER TABLE services ADD COLUMN external_id TEXT UNIQUE;
ALTER TABLE services ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE agencies ADD COLUMN external_id TEXT UNIQUE;
CREATE INDEX services_imported ON services (region_code) WHERE external_id IS NOT NULL;
CREATE INDEX services_updated ON services (updated_at, id);
CREATE INDEX agencies_provider_name ON agencies (region_code, name) WHERE kind IN
    ('AGENCY_KIND_SERVICE_PROVIDER', 'AGENCY_KIND_FOSTER_CARE_TEAM');

-- Every import, with what it did.
CREATE TABLE service_imports (
    id                UUID PRIMARY KEY,
    agency_id         UUID NOT NULL,
    file_name         TEXT NOT NULL,
    file_sha256       TEXT NOT NULL,
    rows              INTEGER NOT NULL,
    created           INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    unchanged         INTEGER NOT NULL,
    refused           INTEGER NOT NULL,
    closed            INTEGER NOT NULL,
    providers_created INTEGER NOT NULL,
    at                TIMESTAMPTZ NOT NULL DEFAULT now()
);
