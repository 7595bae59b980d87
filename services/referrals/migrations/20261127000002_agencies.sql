-- Agencies as the directory announced them (agency.registered), so a submission finds the sender's district
-- and the receiving district's foster-care team and RDSA without asking the directory each time.
CREATE TABLE agencies (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,
    region_code TEXT NOT NULL DEFAULT '',
    learnt_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agencies_region_kind ON agencies (region_code, kind, id);
