-- Users who sign in through an OpenID Connect provider (`[[login.providers]]`): the
-- provider's id and the `sub` it gave the user name one local user, for good. Deleting
-- the user deletes the links.
CREATE TABLE user_links (
    provider_id TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX user_links_user_id ON user_links (user_id);

-- Sign-ins sent to a provider and not yet back: by the SHA-256 digest of the `state`
-- sent, the browser they were started from and the authorization request they continue.
-- Taken (deleted) by the callback, so each is used once; the PKCE verifier and the
-- `nonce` are derived from `state` with the sign-in key and never stored.
CREATE TABLE federated_logins (
    state_digest BYTEA PRIMARY KEY,
    provider_id  TEXT NOT NULL,
    browser_id   TEXT NOT NULL,
    request      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX federated_logins_expires_at ON federated_logins (expires_at);
