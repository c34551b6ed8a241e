-- When the agent said it was starting an approved action (POST /api/v1/requests/{id}/start).
-- Set once: a second start of the same approval is refused, so one approval runs once.
ALTER TABLE requests ADD COLUMN started_at BIGINT;
