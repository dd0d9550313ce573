-- A new opaque token is announced too, so that every instance can keep the digests the
-- store holds in memory and answer for an unknown digest without a lookup.
CREATE FUNCTION introspectd_notify_token_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('introspectd_changes', 'token_added:' || encode(NEW.digest, 'hex'));
    RETURN NULL;
END;
$$;

CREATE TRIGGER tokens_inserted AFTER INSERT ON tokens
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_token_added();
