-- Local users who sign in to authorize clients. user_id is random and never reused: it
-- is the `sub` of their tokens. Usernames are stored trimmed and lower-cased, so they
-- are unique whatever the case they are typed in. The password is kept only as an
-- argon2id PHC string; NULL means no password sign-in.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE
                  CHECK (username = lower(trim(username)) AND length(username) BETWEEN 1 AND 64),
    email         TEXT,
    name          TEXT,
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Browser sessions, by the SHA-256 digest of the session id the cookie names; shared by
-- every instance, so signing out (or disabling the user) ends a session everywhere.
CREATE TABLE sessions (
    digest     BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- What a user allowed a client, remembered so the next sign-in skips the consent page.
-- scope and resources are normalised (sorted, space-joined; '' for none), so one
-- decision is one row.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    resources  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, scope, resources)
);
CREATE INDEX consents_client_id ON consents (client_id);

-- The user a stored token was issued to, so that disabling or deleting the user can
-- revoke every grant they hold. NULL for tokens of clients acting for themselves.
ALTER TABLE tokens ADD COLUMN user_id TEXT;
CREATE INDEX tokens_user_id ON tokens (user_id);

-- Where a client that signs users in may receive authorization codes (JSON array).
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';

-- A change to a user (created, disabled, deleted, a new password) is announced like a
-- change to a client, so every instance forgets the user it cached.
CREATE FUNCTION introspectd_notify_user_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('introspectd_changes',
        'user:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_user_change();
