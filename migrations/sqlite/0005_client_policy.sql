-- What a client may obtain, kept apart from what it may introspect (deny by default):
-- grant_types it may use at the token endpoint, resources (RFC 8707) it may obtain
-- tokens for; audiences keeps its meaning, the audiences whose tokens it may introspect.
-- Existing clients keep their audiences and tokens and get no grant type and no
-- resource until an operator grants them with `client update`.
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
-- A client with a secret accepts client_secret_basic and client_secret_post alike
-- unless strict, when only its registered auth_method is accepted.
ALTER TABLE clients ADD COLUMN strict_auth_method INTEGER NOT NULL DEFAULT 0;
-- Inactive answers allowed per window: NULL the configured default, 0 no limit.
ALTER TABLE clients ADD COLUMN inactive_budget INTEGER;
