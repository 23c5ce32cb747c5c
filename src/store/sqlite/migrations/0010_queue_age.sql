-- The oldest waiting conversion of a config, and how many wait past a cutoff (acceptance
-- windows closing): read from this index, never by scanning the queue.
CREATE INDEX queue_ready_age ON queue (config_id, occurred_at) WHERE state = 'ready';
