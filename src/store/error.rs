use crate::model::Network;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}; set POSTBACK_DATA_DIR to a writable folder")]
    DataDir { path: String, source: std::io::Error },
    #[error("the database could not be opened or upgraded: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("this game already has a {} config; edit or reconnect it instead of adding another", .0.display_name())]
    ConfigExists(Network),
    #[error("no game with id {0}")]
    GameNotFound(i64),
    #[error("a game named '{0}' already exists; choose another name")]
    GameExists(String),
    #[error("this game has no goal '{0}'")]
    GoalNotFound(String),
    #[error("no postback config with id {0}; it may have been disconnected")]
    ConfigNotFound(i64),
    #[error("stored data is damaged ({0}); re-save the config to repair it")]
    Corrupt(String),
    #[error("the queue took {written} of {expected} new conversions; nothing was accepted, send the events again")]
    EnqueueMismatch { written: u64, expected: u64 },
    #[error("--database {url}: {reason}; write it as postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require")]
    BadDatabaseUrl { url: String, reason: String },
    #[error("cannot reach the database at {url}: {reason}; check that the server runs and the address, user and password are right")]
    Unreachable { url: String, reason: String },
    /// SQLite's own machinery, which PostgreSQL has its own form of (its page checks, its
    /// vacuum): asked of a PostgreSQL workspace.
    #[error(
        "{0} is SQLite's; a PostgreSQL workspace has no such step (the server checks and maintains its own files)"
    )]
    SqliteOnly(&'static str),
    /// What only a team workspace has (sealed credentials, workers), asked of a local one.
    #[error("{0}: only a team workspace (PostgreSQL) has them; open one with --database URL")]
    PostgresOnly(&'static str),
    /// The log's player key lives in the OS keychain.
    #[error("the delivery log's player key is kept in the OS keychain: {0}")]
    Keychain(#[from] crate::secrets::SecretsError),
}

impl From<StoreError> for crate::model::ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Keychain(inner) = e {
            return inner.into();
        }
        let code = match &e {
            StoreError::ConfigExists(_) => "config_exists",
            StoreError::GameNotFound(_) | StoreError::ConfigNotFound(_) | StoreError::GoalNotFound(_) => "not_found",
            StoreError::GameExists(_) => "game_exists",
            StoreError::DataDir { .. }
            | StoreError::Migrate(_)
            | StoreError::Sqlx(_)
            | StoreError::Corrupt(_)
            | StoreError::EnqueueMismatch { .. }
            | StoreError::SqliteOnly(_)
            | StoreError::PostgresOnly(_)
            | StoreError::BadDatabaseUrl { .. }
            | StoreError::Unreachable { .. }
            | StoreError::Keychain(_) => "storage",
        };
        crate::model::ApiError::new(code, e.to_string())
    }
}
