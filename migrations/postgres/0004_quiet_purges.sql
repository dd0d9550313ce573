-- Purging expired revocations is not a change any instance needs to hear of: a purged
-- id belongs to a token that has expired. Announcing each purged row made every
-- instance record it as a new revocation.
DROP TRIGGER revoked_jtis_changed ON revoked_jtis;
CREATE TRIGGER revoked_jtis_changed AFTER INSERT ON revoked_jtis
FOR EACH ROW EXECUTE FUNCTION introspectd_notify_change();
