-- Identity assertions (ID-JAG) are used once across every instance: each provider's
-- `jti` is kept here until the assertion expires, then purged.
CREATE TABLE identity_assertion_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    exp INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX identity_assertion_jtis_exp ON identity_assertion_jtis (exp);

-- Grants of a user that left no stored token: an access token from an identity
-- assertion, named by its jti. Its family (in family_jtis) holds that token and what was
-- exchanged from it, so disabling or deleting the user, or revoking their consent to the
-- client, ends them all.
CREATE TABLE user_grants (
    family_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    exp INTEGER NOT NULL
);
CREATE INDEX user_grants_user_id ON user_grants (user_id);
CREATE INDEX user_grants_exp ON user_grants (exp);
