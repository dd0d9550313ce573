-- How each client came to be: 'operator' (client create), 'dynamic' (POST /register,
-- RFC 7591) or 'metadata_document' (a Client ID Metadata Document). Existing clients
-- were all created by an operator.
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'operator'
    CHECK (origin IN ('operator', 'dynamic', 'metadata_document'));
-- When the client last obtained a token (written at most once an hour): self-registered
-- clients unused for registration.unused_client_days are deleted.
ALTER TABLE clients ADD COLUMN last_used_at INTEGER;
-- What a self-registered client said of itself (RFC 7591 §2), https URLs only; kept,
-- never loaded into a page.
ALTER TABLE clients ADD COLUMN client_uri TEXT;
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
CREATE INDEX clients_self_registered ON clients (origin, created_at)
    WHERE origin <> 'operator';
