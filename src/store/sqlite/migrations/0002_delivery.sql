-- The durable delivery queue, dedup memory, delivery log and erasure list.
-- Times are epoch milliseconds (UTC) so that ordering and windows are plain integer compares.

-- One row per (config, event id). 'ready' rows wait to be delivered, 'dead' rows gave up and
-- wait for replay, 'done' rows were delivered and are kept 48 h (payload cleared) as the dedup
-- memory: the same (config, event id) is never enqueued twice within 48 h.
CREATE TABLE queue (
    id           INTEGER PRIMARY KEY,
    config_id    INTEGER NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    player_id    TEXT NOT NULL,
    payload      TEXT NOT NULL,                 -- the canonical event, JSON
    state        TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'dead', 'done')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,              -- not before (backoff)
    lease_owner  TEXT,                          -- dispatcher that claimed it
    lease_until  INTEGER,                       -- claim expires; then it returns to the queue
    enqueued_at  INTEGER NOT NULL,
    UNIQUE (config_id, event_id)
);
CREATE INDEX queue_ready ON queue (config_id, run_at, id) WHERE state = 'ready' AND lease_owner IS NULL;
CREATE INDEX queue_leased ON queue (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX queue_done ON queue (enqueued_at) WHERE state = 'done';

-- One row per delivery attempt of one event.
CREATE TABLE delivery_log (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    config_id    INTEGER NOT NULL,
    network      TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    player_id    TEXT,                          -- NULL once the player is erased
    status       TEXT NOT NULL CHECK (status IN ('success', 'failed', 'retried')),
    http_status  INTEGER,                       -- NULL when nothing was sent or no answer came
    latency_ms   INTEGER,
    attempt      INTEGER NOT NULL,
    request_id   TEXT,
    credential_failure INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE INDEX log_status_at ON delivery_log (status, at, id);
CREATE INDEX log_at ON delivery_log (at, id);
CREATE INDEX log_config_at ON delivery_log (config_id, at);

CREATE TABLE erased_players (
    player_id    TEXT PRIMARY KEY,
    erased_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Set when the network refused the credentials (401/403): the config waits until they change.
ALTER TABLE configs ADD COLUMN paused_reason TEXT;
