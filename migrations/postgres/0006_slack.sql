-- The Slack message posted for each request and route, so a retry never posts twice and
-- each decision updates the message in place.
CREATE TABLE slack_messages (
    request_id TEXT NOT NULL,
    route TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (request_id, route)
);

-- Slack users linked to the SSO identity that signed in to link them (never matched by
-- e-mail address). Decisions from Slack are recorded under that identity.
CREATE TABLE slack_users (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    identity TEXT NOT NULL,
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

-- One-time links that bind a Slack user to an identity; stored as hashes.
CREATE TABLE slack_link_tokens (
    token_hash TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Signatures of interactions already taken, so a replay within the five minutes a
-- signature is valid is refused.
CREATE TABLE slack_replays (
    signature TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
