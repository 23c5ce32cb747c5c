-- Games, their Conversion Goals and one postback config per (game, network).
-- Secrets are never stored here: `credential_ref` names a keychain entry, or 'sandbox'.
CREATE TABLE games (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE goals (
    id          INTEGER PRIMARY KEY,
    game_id     INTEGER NOT NULL REFERENCES games(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    event       TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    position    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (game_id, key)
);

CREATE TABLE configs (
    id              INTEGER PRIMARY KEY,
    game_id         INTEGER NOT NULL REFERENCES games(id) ON DELETE CASCADE,
    network         TEXT NOT NULL CHECK (network IN ('tiktok', 'reddit', 'x')),
    pixel           TEXT NOT NULL,
    trigger_events  TEXT NOT NULL DEFAULT '[]',   -- JSON array; unused for X (goals decide)
    base_url        TEXT,                         -- NULL = the real network
    enabled         INTEGER NOT NULL DEFAULT 1,
    credential_ref  TEXT,                         -- keychain entry name, never the secret
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (game_id, network)
);

-- X Single Event Tag per Goal (a goal without a row here is not sent to X).
CREATE TABLE x_goal_tags (
    config_id   INTEGER NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
    goal_id     INTEGER NOT NULL REFERENCES goals(id) ON DELETE CASCADE,
    event_tag   TEXT NOT NULL,
    PRIMARY KEY (config_id, goal_id)
);
