-- The watch side: what was sent and answered (shared by the rows of a batch, compressed), each
-- log row's place in its request, and per-hour traffic counts (arrived, queued, skipped per
-- reason) that answer "why was nothing sent?" without keeping any personal data.

CREATE TABLE delivery_requests (
    id               INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,
    config_id        INTEGER NOT NULL,
    url              TEXT NOT NULL,
    headers          TEXT NOT NULL,     -- JSON object; credential headers hold "<redacted>"
    body             BLOB NOT NULL,     -- the request body JSON, deflate-compressed
    response_status  INTEGER,           -- NULL: no answer
    response_headers TEXT,              -- JSON object of the headers that matter
    response_body    TEXT               -- at most 16 KiB
);
CREATE INDEX requests_at ON delivery_requests (at);

ALTER TABLE delivery_log ADD COLUMN request_ref INTEGER;   -- delivery_requests.id
ALTER TABLE delivery_log ADD COLUMN item_index INTEGER;    -- this conversion's item in the request body
CREATE INDEX log_request ON delivery_log (request_ref) WHERE request_ref IS NOT NULL;
CREATE INDEX log_event ON delivery_log (event_id);
CREATE INDEX log_config_status_at ON delivery_log (config_id, status, at, id);

CREATE TABLE traffic (
    hour       INTEGER NOT NULL,           -- epoch ms of the hour's start
    game_id    INTEGER NOT NULL,
    source     TEXT NOT NULL,              -- import, ingest, demo
    config_id  INTEGER NOT NULL,           -- 0: the game as a whole (events that arrived)
    kind       TEXT NOT NULL,              -- arrived | queued | skipped:<reason>
    count      INTEGER NOT NULL,
    PRIMARY KEY (hour, game_id, source, config_id, kind)
) WITHOUT ROWID;
CREATE INDEX traffic_game ON traffic (game_id, hour);

-- Attempts per hour, config and status, kept by every log insert: charts and totals over 30
-- days read a few hundred rows instead of scanning millions.
CREATE TABLE log_hourly (
    hour       INTEGER NOT NULL,
    config_id  INTEGER NOT NULL,
    status     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (hour, config_id, status)
) WITHOUT ROWID;
INSERT INTO log_hourly (hour, config_id, status, count)
SELECT (at / 3600000) * 3600000, config_id, status, COUNT(*) FROM delivery_log GROUP BY 1, 2, 3;
