-- Signed webhooks read the audit trail forward from a cursor per endpoint, so a restart
-- loses nothing and each endpoint gets every event in order, at least once.
-- `owner` and `lease_until` let one replica at a time deliver to an endpoint.
CREATE TABLE webhook_cursors (
    endpoint TEXT PRIMARY KEY,
    delivered_seq BIGINT NOT NULL,
    owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);

-- What happened to each event sent to an endpoint: attempts, the last answer, when it
-- was accepted. One row per (endpoint, event).
CREATE TABLE webhook_deliveries (
    endpoint TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    last_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    PRIMARY KEY (endpoint, seq)
);
