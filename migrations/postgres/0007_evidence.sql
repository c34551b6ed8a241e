-- Evidence (ARCHITECTURE.md, "Evidence"): the audit log as an RFC 6962 Merkle tree,
-- signed checkpoints of it, and approval receipts.

-- The tree's frontier (the roots of its perfect subtrees) beside the chain's head, so an
-- append reads nothing else. A store from before this version has tree_size 0: the
-- server builds the tree of its existing events at start.
ALTER TABLE audit_head ADD COLUMN tree_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN frontier TEXT NOT NULL DEFAULT '';

-- The hashes each event stored when it joined the tree (its leaf's, then every subtree
-- it completed), for proofs. Derived from the events: verification recomputes them.
CREATE TABLE audit_tree (
    seq     BIGINT PRIMARY KEY,
    hashes  BYTEA NOT NULL
);

-- Signed tree heads (C2SP checkpoint notes): one at every multiple of the configured
-- count, after a quiet interval and at shutdown.
CREATE TABLE audit_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    key_id     TEXT NOT NULL,
    note       TEXT NOT NULL
);

CREATE TRIGGER audit_tree_append_only BEFORE UPDATE OR DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
    FOR EACH STATEMENT EXECUTE FUNCTION signoff_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION signoff_refuse_change();

-- The receipt issued when the request was approved, and when reporting with it used it.
ALTER TABLE requests ADD COLUMN receipt TEXT;
ALTER TABLE requests ADD COLUMN receipt_used_at BIGINT;
