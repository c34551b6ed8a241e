-- Signoff schema, SQLite dialect. Times are Unix milliseconds (UTC); JSON is stored as text.

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    owner       TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    key_hash    TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_agent ON api_keys (agent_id);

CREATE TABLE requests (
    id               TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL REFERENCES agents (id),
    on_behalf_of     TEXT,
    action           TEXT NOT NULL,
    resource         TEXT NOT NULL,
    title            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    labels           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    diff             TEXT,
    context          TEXT,
    digest           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled', 'executed', 'failed')),
    policy           TEXT NOT NULL,
    approvals        BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    decided_at       BIGINT,
    result           TEXT,
    idempotency_key  TEXT,
    body_hash        TEXT
);
CREATE UNIQUE INDEX requests_idempotency ON requests (agent_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX requests_queue ON requests (created_at, id) WHERE status = 'pending';
CREATE INDEX requests_expiry ON requests (expires_at) WHERE status = 'pending';
CREATE INDEX requests_by_time ON requests (created_at, id);
CREATE INDEX requests_by_agent ON requests (agent_id, created_at);
CREATE INDEX requests_by_action ON requests (action, created_at);
CREATE INDEX requests_by_status ON requests (status, created_at);

-- Labels again, one row each, so history can be filtered by label on large tables.
CREATE TABLE request_labels (
    request_id  TEXT NOT NULL REFERENCES requests (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (request_id, key)
);
CREATE INDEX request_labels_lookup ON request_labels (key, value, created_at, request_id);

CREATE TABLE decisions (
    id                TEXT PRIMARY KEY,
    request_id        TEXT NOT NULL REFERENCES requests (id),
    reviewer_issuer   TEXT NOT NULL,
    reviewer_subject  TEXT NOT NULL,
    reviewer_email    TEXT,
    reviewer_name     TEXT,
    reviewer_groups   TEXT NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
    comment           TEXT NOT NULL,
    channel           TEXT NOT NULL,
    decided_at        BIGINT NOT NULL,
    UNIQUE (request_id, reviewer_issuer, reviewer_subject)
);
CREATE INDEX decisions_by_reviewer ON decisions (reviewer_subject, decided_at);
CREATE INDEX decisions_by_reviewer_email ON decisions (reviewer_email, decided_at);
CREATE INDEX decisions_by_request ON decisions (request_id);

-- The audit trail: a hash chain, each event's hash covering the previous one.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    request_id  TEXT,
    actor       TEXT NOT NULL,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_by_request ON audit_events (request_id, seq);

-- Terminal sign-in: a device code waits for a signed-in reviewer to confirm it.
CREATE TABLE device_codes (
    code_hash       TEXT PRIMARY KEY,
    user_code       TEXT NOT NULL UNIQUE,
    client_name     TEXT,
    client_address  TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_polled_at  BIGINT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
    identity        TEXT
);
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);

-- Bearer tokens of the terminal client, bound to the SSO identity that confirmed them.
CREATE TABLE terminal_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    identity     TEXT NOT NULL,
    client_name  TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX terminal_tokens_by_owner ON terminal_tokens (issuer, subject);

-- The chain's head, one row; appending locks it so the chain never forks.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
