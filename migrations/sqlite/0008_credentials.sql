-- Every server answers "who holds this key or token?" from memory. A change to a credential
-- (an agent, its keys, a terminal token) bumps this one counter in the same transaction, so a
-- server learns with one cheap read that another process (the command line, a replica)
-- changed one, and loads the table again. See ARCHITECTURE.md, "Who may do what".
CREATE TABLE credential_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO credential_version (id, version) VALUES (1, 0);

CREATE TRIGGER agents_insert_credentials AFTER INSERT ON agents
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER agents_update_credentials AFTER UPDATE ON agents
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER agents_delete_credentials AFTER DELETE ON agents
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_insert_credentials AFTER INSERT ON api_keys
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_update_credentials AFTER UPDATE ON api_keys
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_delete_credentials AFTER DELETE ON api_keys
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER terminal_tokens_insert_credentials AFTER INSERT ON terminal_tokens
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER terminal_tokens_update_credentials AFTER UPDATE ON terminal_tokens
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER terminal_tokens_delete_credentials AFTER DELETE ON terminal_tokens
BEGIN UPDATE credential_version SET version = version + 1 WHERE id = 1; END;
