-- Every change that can alter an introspection answer is announced on the channel
-- introspectd_changes as "kind:key", so that every instance sharing this database can
-- forget what it cached, whoever made the change.
CREATE FUNCTION introspectd_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT;
BEGIN
    IF TG_TABLE_NAME = 'clients' THEN
        payload := 'client:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.client_id ELSE NEW.client_id END;
    ELSIF TG_TABLE_NAME = 'tokens' THEN
        payload := 'token:' || encode(OLD.digest, 'hex');
    ELSIF TG_TABLE_NAME = 'revoked_jtis' THEN
        payload := 'jti:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.jti ELSE NEW.jti END;
    ELSE
        payload := 'keys:';
    END IF;
    PERFORM pg_notify('introspectd_changes', payload);
    RETURN NULL;
END;
$$;

CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_change();
CREATE TRIGGER tokens_changed AFTER UPDATE OR DELETE ON tokens
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_change();
CREATE TRIGGER revoked_jtis_changed AFTER INSERT OR DELETE ON revoked_jtis
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_change();
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_change();
