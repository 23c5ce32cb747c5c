//! SQLite persistence (sqlx): the only module with SQL. One database file per data directory,
//! WAL journal, migrations embedded in the binary.

mod configs;
mod error;
mod log;
mod queue;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use configs::{StoredConfig, DEMO_GAME_NAME};
pub use error::StoreError;
pub use log::LogFilter;
pub use queue::{EnqueueReport, Leased, NewLogEntry, Pause, Settlement, DEDUP_WINDOW_MS};

/// The database file inside a data directory.
pub const DB_FILE: &str = "postback.db";

/// Where the data lives: `POSTBACK_DATA_DIR`, else the OS data directory (`~/.local/share/postback-desk`).
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POSTBACK_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("postback-desk")
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a process crash; only power loss can drop the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A larger page cache keeps the queue and log indexes in memory on the hot path.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        Ok(Self { pool, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
