-- The set-up side: goal trigger rules and value filters, the demo game, and the memory of which
-- players already converted for a once-per-player goal.

ALTER TABLE goals ADD COLUMN rule TEXT NOT NULL DEFAULT 'every_time'
    CHECK (rule IN ('every_time', 'once_per_player'));
ALTER TABLE goals ADD COLUMN min_value TEXT;     -- value filter: a decimal amount …
ALTER TABLE goals ADD COLUMN currency TEXT;      -- … in this ISO 4217 currency (both or neither)

ALTER TABLE games ADD COLUMN is_demo INTEGER NOT NULL DEFAULT 0;
UPDATE games SET is_demo = 1
WHERE name = 'Sandbox Game' AND id = (SELECT MIN(id) FROM games)
  AND EXISTS (SELECT 1 FROM configs c WHERE c.game_id = games.id AND c.credential_ref = 'sandbox');

-- A once-per-player goal counts a player once: the first conversion enqueued for it. Keyed by
-- the same keyed hash as the log (never the raw player id); an erasure deletes the rows.
CREATE TABLE goal_conversions (
    goal_id     INTEGER NOT NULL REFERENCES goals(id) ON DELETE CASCADE,
    player_key  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (goal_id, player_key)
) WITHOUT ROWID;
CREATE INDEX goal_conversions_player ON goal_conversions (player_key);
