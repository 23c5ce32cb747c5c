-- Match quality and freshness read one family of traffic counts (`match:…`, `fresh:…`) of a
-- game over a range: this index serves those reads from the index alone, in byte order.
CREATE INDEX traffic_by_kind ON traffic (game_id, kind, hour, config_id, count);
