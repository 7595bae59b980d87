-- Announcements the directory owes its consumers once per installation: a pending row (announced_at NULL)
-- makes the first instance that starts after this migration announce every agency and service again, in the
-- transaction that marks the row announced, so that two instances starting together announce once.
CREATE TABLE announcements (
    topic        TEXT PRIMARY KEY,
    announced_at TIMESTAMPTZ,
    -- How many events the announcement wrote to the outbox.
    events       BIGINT NOT NULL DEFAULT 0
);

-- Agencies and services registered before their events carried names (and, for services, ages) were never
-- announced with them: the notifications service words their notices without names until they are.
INSERT INTO announcements (topic) VALUES ('names');
