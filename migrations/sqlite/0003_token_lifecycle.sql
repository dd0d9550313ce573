-- Refresh-token rotation (RFC 9700 §4.14.2): the tokens of one grant share a family; a
-- refresh token that was exchanged for a new one carries rotated_at, and presenting it
-- again revokes the whole family.
ALTER TABLE tokens ADD COLUMN family_id TEXT;
ALTER TABLE tokens ADD COLUMN rotated_at INTEGER;
UPDATE tokens SET family_id = jti WHERE token_use = 'refresh_token';
CREATE INDEX tokens_family_id ON tokens (family_id);

-- JWT access tokens minted from a refresh token, so that revoking the grant can revoke
-- them by jti (RFC 7009 §2.1). Kept until they expire.
CREATE TABLE family_jtis (
    jti       TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL,
    exp       INTEGER NOT NULL
);
CREATE INDEX family_jtis_family_id ON family_jtis (family_id);
CREATE INDEX family_jtis_exp ON family_jtis (exp);

-- Public keys of clients that authenticate with private_key_jwt (RFC 7523 §2.2), as a
-- JWK Set document.
CREATE TABLE client_jwks (
    client_id TEXT PRIMARY KEY NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    jwks      TEXT NOT NULL
);

-- jti values of client assertions already used, kept until the assertion expires
-- (RFC 7523 §3, item 7: replay protection).
CREATE TABLE client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti       TEXT NOT NULL,
    exp       INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_exp ON client_assertion_jtis (exp);
