-- A new opaque token is announced too, so that every instance can keep the digests the
-- store holds in memory and answer for an unknown digest without a lookup.
CREATE TRIGGER tokens_inserted AFTER INSERT ON tokens
BEGIN INSERT INTO change_log (kind, key) VALUES ('token_added', lower(hex(NEW.digest))); END;
