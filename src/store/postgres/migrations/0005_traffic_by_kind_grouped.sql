-- A family's counts are summed per (kind, config): with the config before the hour, the index
-- hands them over already grouped, and the sum streams without a sort.
DROP INDEX traffic_by_kind;
CREATE INDEX traffic_by_kind ON traffic (game_id, kind COLLATE "C", config_id, hour) INCLUDE (count);
