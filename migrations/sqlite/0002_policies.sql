-- Policies (versioned), grants, break-glass follow-ups. Times are Unix milliseconds.

-- A policy's current version, in evaluation order (position, lowest first).
CREATE TABLE policies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    position    BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    document    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Every version ever saved, readable forever; requests name the version they matched.
CREATE TABLE policy_versions (
    policy_id   TEXT NOT NULL REFERENCES policies (id),
    version     BIGINT NOT NULL,
    document    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

-- Changes with every saved policy change, so each replica knows when to reload.
CREATE TABLE policy_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO policy_state (id, generation) VALUES (1, 0);

-- Approvals that cover later requests of one agent, for a while or a number of uses.
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL REFERENCES requests (id),
    policy_id       TEXT NOT NULL REFERENCES policies (id),
    policy_version  BIGINT NOT NULL,
    agent_id        TEXT NOT NULL REFERENCES agents (id),
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    fields          TEXT NOT NULL,
    granted_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    max_uses        BIGINT NOT NULL,
    uses            BIGINT NOT NULL DEFAULT 0,
    revoked_at      BIGINT,
    revoked_by      TEXT
);
CREATE INDEX grants_lookup ON grants (agent_id, action, resource);

-- A break-glass approval stays in every admin's queue until another admin acknowledges it.
CREATE TABLE followups (
    request_id       TEXT PRIMARY KEY REFERENCES requests (id),
    opened_at        BIGINT NOT NULL,
    opened_by        TEXT NOT NULL,
    acknowledged_at  BIGINT,
    acknowledged_by  TEXT
);

-- What an agent is for, as its admin described it.
ALTER TABLE agents ADD COLUMN description TEXT;

ALTER TABLE requests ADD COLUMN break_glass BIGINT NOT NULL DEFAULT 0;
-- When a pending request's eligibility widens to its escalation groups; cleared once the
-- sweeper has announced it.
ALTER TABLE requests ADD COLUMN escalates_at BIGINT;
CREATE INDEX requests_escalation ON requests (escalates_at) WHERE status = 'pending' AND escalates_at IS NOT NULL;
