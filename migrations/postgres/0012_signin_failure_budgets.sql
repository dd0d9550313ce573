-- Failed password sign-ins, shared by every instance: one row per budget that has a
-- failure in its current window (an address, a username at an address, a username, a
-- browser that proved its user), known by the SHA-256 digest of the budget's key so that
-- what was typed as a username is not kept. Written on failures only; rows whose window
-- ended are purged.
CREATE TABLE signin_failures (
    digest     BYTEA PRIMARY KEY,
    failures   INTEGER NOT NULL,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX signin_failures_expires_at ON signin_failures (expires_at);
