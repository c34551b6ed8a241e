-- request_labels repeats each request's labels, one row each, for the label filter. The
-- engine writes them only together with their request, in the same statement batch and
-- transaction, and requests are never deleted, so the foreign key could never fail; its check,
-- a trigger per label row, cost the writer more than the inserts themselves (five labels per
-- request: about 4 ms of a 32-request batch). See ARCHITECTURE.md, "The write path".
ALTER TABLE request_labels DROP CONSTRAINT IF EXISTS request_labels_request_id_fkey;
