-- Authorization codes (OAuth 2.1 §4.1.2), known only by the SHA-256 digest of the code.
-- A code lives for a minute and is exchanged once: used_at marks the exchange, and the
-- tokens it gave share family_id, so that presenting the code again revokes them all.
CREATE TABLE authorization_codes (
    digest         BLOB PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT,
    resources      TEXT NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    family_id      TEXT NOT NULL
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_user_id ON authorization_codes (user_id);

-- The key that signs sign-in cookies and CSRF tokens, shared by every instance; sealed
-- with AES-256-GCM under the key-encryption key, as generated signing keys are.
CREATE TABLE signin_keys (
    name       TEXT PRIMARY KEY NOT NULL,
    sealed     BLOB NOT NULL,
    encryption TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
