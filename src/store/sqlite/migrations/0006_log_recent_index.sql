-- The newest-first page of a game or a config without a status filter walks this index in
-- order and reads config and status from it: (at, id) alone needed a table lookup per row,
-- and the planner preferred gathering and sorting every row of the game's configs (1.6 s for a
-- 30-day page on a 5,000,000-row log).
DROP INDEX IF EXISTS log_at;
CREATE INDEX log_recent ON delivery_log (at, id, config_id, status);
