-- Match quality and freshness read one family of traffic counts (`match:…`, `fresh:…`) of a
-- game over a range: a byte-order ("C") prefix range on kind, served from this index alone.
CREATE INDEX traffic_by_kind ON traffic (game_id, kind COLLATE "C", hour) INCLUDE (config_id, count);
