-- After `client rotate-secret --grace SECONDS`, the secret it replaced keeps working
-- until previous_secret_expires_at (seconds since the epoch): its argon2id hash is kept
-- here until then, and both columns are NULL otherwise. A later rotation replaces them.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
