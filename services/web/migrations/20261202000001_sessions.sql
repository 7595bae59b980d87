-- Signed-in staff. The cookie holds a random id; only its SHA-256 is stored, so the table does not hand out
-- sessions to whoever reads it. The access and refresh tokens are the person's own (forwarded to the
-- services, which verify them).
CREATE TABLE sessions (
    id_hash BYTEA PRIMARY KEY,
    subject TEXT NOT NULL,
    agency_id UUID NOT NULL,
    roles TEXT[] NOT NULL,
    access_token TEXT NOT NULL,
    access_expires_at TIMESTAMPTZ NOT NULL,
    refresh_token TEXT,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- Sign-ins under way: the state sent to the identity provider, with the PKCE verifier and nonce that
-- finish it. A row is used once (deleted when the provider sends the person back).
CREATE TABLE sign_ins (
    state TEXT PRIMARY KEY,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
