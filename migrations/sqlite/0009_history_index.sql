-- Postgres gains an index of decided requests for history pages here (see its 0009).
-- SQLite's planner already reads history within its page-time budget, and uses a partial
-- index only when the query repeats its condition, so this store gets none: the numbers
-- of both stores' migrations stay in step.
SELECT 1;
