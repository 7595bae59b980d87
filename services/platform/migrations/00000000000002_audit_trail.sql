-- The audit trail (services that hold cases or referrals): append-only, each entry chained to the one before
-- by its hash, so an edited or deleted entry is found by VerifyAuditTrail even when someone with database
-- access got past the trigger below.
CREATE TABLE audit_trail (
    seq         BIGINT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    agency_id   UUID NOT NULL,
    subject     TEXT NOT NULL,
    rpc         TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_ids  UUID[] NOT NULL,
    outcome     TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX audit_trail_records ON audit_trail USING gin (record_ids);

-- The end of the chain. Appending locks this row, so entries are chained one after another, and a trail cut
-- short at its end is found too.
CREATE TABLE audit_head (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      BIGINT NOT NULL,
    hash     BYTEA NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

CREATE FUNCTION audit_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only();
