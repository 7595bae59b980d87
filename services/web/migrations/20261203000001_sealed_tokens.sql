-- The person's access and refresh tokens, sealed (AES-256-GCM) with a key derived from the session's cookie,
-- which this table does not hold (only its SHA-256 under another name): whoever reads the table, or a
-- backup of it, cannot use the tokens. Sessions begun before kept them in clear: they are ended.
DELETE FROM sessions;
ALTER TABLE sessions
    DROP COLUMN access_token,
    DROP COLUMN refresh_token,
    ADD COLUMN access_token_sealed BYTEA NOT NULL,
    ADD COLUMN refresh_token_sealed BYTEA;
