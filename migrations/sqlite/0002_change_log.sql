-- Every change that can alter an introspection answer, in commit order. Instances read
-- it to forget cached state when another process (the CLI, another server) writes.
CREATE TABLE change_log (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN INSERT INTO change_log (kind, key) VALUES ('client', NEW.client_id); END;
CREATE TRIGGER clients_updated AFTER UPDATE ON clients
BEGIN INSERT INTO change_log (kind, key) VALUES ('client', OLD.client_id); END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN INSERT INTO change_log (kind, key) VALUES ('client', OLD.client_id); END;

CREATE TRIGGER tokens_updated AFTER UPDATE ON tokens
BEGIN INSERT INTO change_log (kind, key) VALUES ('token', lower(hex(OLD.digest))); END;
CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens
BEGIN INSERT INTO change_log (kind, key) VALUES ('token', lower(hex(OLD.digest))); END;

CREATE TRIGGER revoked_jtis_inserted AFTER INSERT ON revoked_jtis
BEGIN INSERT INTO change_log (kind, key) VALUES ('jti', NEW.jti); END;
CREATE TRIGGER revoked_jtis_deleted AFTER DELETE ON revoked_jtis
BEGIN INSERT INTO change_log (kind, key) VALUES ('jti', OLD.jti); END;

CREATE TRIGGER signing_keys_inserted AFTER INSERT ON signing_keys
BEGIN INSERT INTO change_log (kind, key) VALUES ('keys', ''); END;
CREATE TRIGGER signing_keys_deleted AFTER DELETE ON signing_keys
BEGIN INSERT INTO change_log (kind, key) VALUES ('keys', ''); END;
