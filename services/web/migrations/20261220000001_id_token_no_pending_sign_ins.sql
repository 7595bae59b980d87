-- The ID token of the sign-in, sealed like the other tokens: the hint that lets the identity provider end
-- the person's session there too when they sign out (RP-initiated logout).
ALTER TABLE sessions ADD COLUMN id_token_sealed BYTEA;

-- A sign-in under way is kept in a short-lived cookie of the browser that started it, not here: a row per
-- anonymous request to /sign-in let anyone fill the table, and a state not bound to a browser let an
-- attacker's half-done sign-in be finished in a victim's.
DROP TABLE sign_ins;
