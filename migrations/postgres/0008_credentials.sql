-- Every server answers "who holds this key or token?" from memory. A change to a credential
-- (an agent, its keys, a terminal token) bumps this one counter in the same transaction, so a
-- server learns with one cheap read that another process (the command line, a replica)
-- changed one, and loads the table again. See ARCHITECTURE.md, "Who may do what".
CREATE TABLE credential_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO credential_version (id, version) VALUES (1, 0);

CREATE FUNCTION signoff_credentials_changed() RETURNS trigger AS $$
BEGIN
    UPDATE credential_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER agents_credentials AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION signoff_credentials_changed();
CREATE TRIGGER api_keys_credentials AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION signoff_credentials_changed();
CREATE TRIGGER terminal_tokens_credentials AFTER INSERT OR UPDATE OR DELETE ON terminal_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION signoff_credentials_changed();
