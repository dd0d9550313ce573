-- Generated private keys are sealed with AES-256-GCM under a key-encryption key kept
-- outside the database. `encryption` names the cipher and that key's id; NULL marks a key
-- stored in plain PKCS#8 before, which the service seals on its next start.
ALTER TABLE signing_keys ADD COLUMN encryption TEXT;

-- Staged rotation: a key is published from its creation and signs from `activates_at`,
-- so verifiers that cache /jwks know it before they see a token it signed. Existing keys
-- were signing from their creation. (Updates already notify: signing_keys_changed.)
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;
