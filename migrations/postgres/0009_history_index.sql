-- History pages read decided requests newest first. On `requests_by_time` Postgres walks
-- past every pending request (the newest rows) before the first decided one, and with a
-- filter such as a reviewer's that costs a probe each; this index holds decided requests
-- only. Pending requests are not in it, so creating one costs nothing more.
CREATE INDEX requests_history ON requests (created_at, id) WHERE status <> 'pending';
