-- Erasure that holds at rest and in flight.
--
-- Erased players are remembered by the keyed hash of their id (the log's player key), never by
-- the raw id of someone who asked to be forgotten. The old table's rows are moved by the store
-- when it opens (it needs the key, which lives in the keychain), then the table is dropped.
CREATE TABLE erased_player_keys (
    player_key TEXT PRIMARY KEY,
    erased_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Items of stored requests that no log row points at (a batch whose items were then re-sent
-- one by one; an event's second item): an erasure finds every stored item by its player.
CREATE TABLE request_items (
    player_key  TEXT NOT NULL,
    request_id  INTEGER NOT NULL REFERENCES delivery_requests (id) ON DELETE CASCADE,
    item_index  INTEGER NOT NULL,
    network     TEXT NOT NULL,
    PRIMARY KEY (player_key, request_id, item_index)
) WITHOUT ROWID;
CREATE INDEX request_items_request ON request_items (request_id);
