-- What kind of application a self-registered client is (OpenID Connect registration
-- `application_type`, MCP 2026-07-28): 'native' (loopback or private-use redirect URIs)
-- or 'web' (https). Given or inferred at POST /register and from metadata documents;
-- NULL for operator clients, which never said.
ALTER TABLE clients ADD COLUMN application_type TEXT
    CHECK (application_type IN ('native', 'web'));
