-- Reliable delivery: one queue row per conversion (X: per goal), lease tokens, a give-up clock
-- that starts at the first failed answer, per-config offline state, honest log statuses, and a
-- delivery log that never holds a raw player id.

-- A random key per database: the log keys player rows with HMAC-SHA256(key, player_id), so an
-- erasure can still find them while the file never holds the raw id.
CREATE TABLE meta (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- The queue, rebuilt: `goal_key` makes each X goal's conversion its own row ('' for TikTok and
-- Reddit), so X refusing one goal never fails another; `lease_token` names one claim and every
-- settle matches it; `failing_since` starts the give-up budget at the first failed answer.
CREATE TABLE queue_v3 (
    id             INTEGER PRIMARY KEY,
    config_id      INTEGER NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
    event_id       TEXT NOT NULL,
    goal_key       TEXT NOT NULL DEFAULT '',
    event_name     TEXT NOT NULL,
    player_id      TEXT NOT NULL,                 -- '' once delivered (the row is then dedup memory only)
    occurred_at    INTEGER NOT NULL,              -- event time, ms: acceptance windows without parsing
    payload        TEXT NOT NULL,                 -- the canonical event, JSON; '' once delivered
    state          TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'dead', 'done')),
    attempts       INTEGER NOT NULL DEFAULT 0,    -- sends that got an HTTP answer
    run_at         INTEGER NOT NULL,
    failing_since  INTEGER,
    lease_token    TEXT,
    lease_until    INTEGER,
    enqueued_at    INTEGER NOT NULL,
    settled_at     INTEGER,                       -- when it became done or dead
    UNIQUE (config_id, event_id, goal_key)
);
INSERT INTO queue_v3 (id, config_id, event_id, goal_key, event_name, player_id, occurred_at, payload, state,
                      attempts, run_at, lease_token, lease_until, enqueued_at, settled_at)
SELECT id, config_id, event_id, '', event_name, CASE WHEN state = 'done' THEN '' ELSE player_id END,
       COALESCE(CAST(strftime('%s', json_extract(NULLIF(payload, ''), '$.occurred_at')) AS INTEGER) * 1000, enqueued_at),
       payload, state, attempts, run_at, NULL, NULL, enqueued_at,
       CASE WHEN state = 'ready' THEN NULL ELSE enqueued_at END
FROM queue;
DROP TABLE queue;
ALTER TABLE queue_v3 RENAME TO queue;
CREATE INDEX queue_ready ON queue (config_id, run_at, id) WHERE state = 'ready' AND lease_token IS NULL;
CREATE INDEX queue_leased ON queue (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX queue_done ON queue (enqueued_at) WHERE state = 'done';
CREATE INDEX queue_dead ON queue (config_id, settled_at) WHERE state = 'dead';

-- The log, rebuilt: new statuses, the X goal, and a keyed player hash instead of the raw id.
-- Rows written before this migration lose their player link: nothing raw stays in the file.
CREATE TABLE delivery_log_v3 (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    config_id    INTEGER NOT NULL,
    network      TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    goal_key     TEXT NOT NULL DEFAULT '',
    player_key   TEXT,                          -- HMAC of the player id; NULL once erased
    status       TEXT NOT NULL CHECK (status IN ('success', 'failed', 'retried', 'held', 'offline', 'given_up')),
    http_status  INTEGER,                       -- NULL when nothing was sent or no answer came
    latency_ms   INTEGER,
    attempt      INTEGER NOT NULL,
    request_id   TEXT,
    credential_failure INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
INSERT INTO delivery_log_v3 (id, at, config_id, network, event_name, event_id, player_key, status, http_status,
                             latency_ms, attempt, request_id, credential_failure, error)
SELECT id, at, config_id, network, event_name, event_id, NULL,
       CASE WHEN credential_failure = 1 AND status = 'failed' THEN 'held' ELSE status END,
       http_status, latency_ms, attempt, request_id, credential_failure, error
FROM delivery_log;
DROP TABLE delivery_log;
ALTER TABLE delivery_log_v3 RENAME TO delivery_log;
-- Every index costs each delivered event a B-tree insert: only what the queries need.
CREATE INDEX log_at ON delivery_log (at, id);
CREATE INDEX log_player ON delivery_log (player_key) WHERE player_key IS NOT NULL;

-- No HTTP answer (connection refused, DNS, timeout): the config waits for the network, probing
-- with backoff, without spending the events' attempts.
ALTER TABLE configs ADD COLUMN offline_since INTEGER;
ALTER TABLE configs ADD COLUMN offline_until INTEGER;
ALTER TABLE configs ADD COLUMN offline_probes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE configs ADD COLUMN offline_reason TEXT;
