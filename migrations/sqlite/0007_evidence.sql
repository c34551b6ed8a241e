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
    hashes  BLOB NOT NULL
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

CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

-- The receipt issued when the request was approved, and when reporting with it used it.
ALTER TABLE requests ADD COLUMN receipt TEXT;
ALTER TABLE requests ADD COLUMN receipt_used_at BIGINT;
