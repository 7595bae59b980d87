-- A notice keeps the facts it tells (a placement.v1.NoticeFacts, protobuf-encoded), not words: it is worded
-- when shown or sent, in its reader's language, with the names known then. Notices stored before have none
-- and keep the title and body they were written with, shown as they are.
ALTER TABLE notifications ADD COLUMN facts BYTEA;

-- The names of agencies and services, from the directory's "agency.registered" and "service.registered":
-- only to word notices for people (events and logs carry the ids). `name_en` is empty when the directory
-- has no English name.
CREATE TABLE directory_names (
    id        UUID PRIMARY KEY,
    name      TEXT NOT NULL,
    name_en   TEXT NOT NULL,
    learnt_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
