-- A team workspace: desktops and server workers on one database.

-- The ad networks' credentials, each sealed (libsodium sealed box) to the workspace's public
-- key (meta 'workspace_public_key'). Desktops seal; only workers, with the private key file,
-- open. Named by the config's credential_ref, as keychain entries are on a desktop.
CREATE TABLE sealed_secrets (
    reference  TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    sealed_at  BIGINT NOT NULL
);

-- Workers that delivered from this database. Liveness is not a column: a worker is live while
-- its presence lock (held by backend_pid, key lock_key) shows in pg_locks.
CREATE TABLE workers (
    lock_key     INTEGER PRIMARY KEY,
    backend_pid  INTEGER NOT NULL,
    host         TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL
);

-- Which worker took each config's lead last, and when; live while its lead lock shows in
-- pg_locks under backend_pid.
CREATE TABLE config_holders (
    config_id    BIGINT PRIMARY KEY REFERENCES configs(id) ON DELETE CASCADE,
    worker       INTEGER,
    backend_pid  INTEGER NOT NULL,
    since        BIGINT NOT NULL
);
