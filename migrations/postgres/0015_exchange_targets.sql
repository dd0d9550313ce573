-- Token exchange (RFC 8693): the targets (resources or audiences) a client may exchange
-- a user's token for. Deny by default: existing clients get none.
ALTER TABLE clients ADD COLUMN exchange_targets TEXT NOT NULL DEFAULT '[]';
