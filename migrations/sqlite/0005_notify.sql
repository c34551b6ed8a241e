-- When the reminder before expiry is due (the policy's `remind_before`), until it is sent.
ALTER TABLE requests ADD COLUMN remind_at BIGINT;
CREATE INDEX requests_reminder ON requests (remind_at) WHERE status = 'pending' AND remind_at IS NOT NULL;
-- Where the agent asked to be told the outcome (checked against `[callbacks] allowed_hosts`
-- when it was submitted).
ALTER TABLE requests ADD COLUMN callback_url TEXT;
