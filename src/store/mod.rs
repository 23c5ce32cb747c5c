//! SQLite persistence (sqlx): the only module with SQL. One database file per data directory,
//! WAL journal, migrations embedded in the binary.

mod checkpoint;
mod configs;
mod error;
mod games;
mod goals;
mod log;
mod player_key;
mod queue;
mod requests;
mod settle;
mod traffic;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use crate::model::LogFilter;
pub use configs::{ConfigLoad, OfflineState, StoredConfig, DEMO_GAME_NAME};
pub use error::StoreError;
pub use queue::{
    EnqueueReport, Leased, NewDelivery, NewLogEntry, Offline, Pause, Replay, ReplayRefusal, Retry, SettleReport,
    Settlement, DEDUP_WINDOW_MS,
};
pub use requests::{RequestRecord, StoredRequest};
pub use traffic::TrafficCount;

use player_key::PlayerKeyer;

/// The database file inside a data directory.
pub const DB_FILE: &str = "postback.db";

/// Where the data lives: `POSTBACK_DATA_DIR`, else the OS data directory (`~/.local/share/postback-desk`).
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POSTBACK_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("postback-desk")
}

/// How the database is opened; the defaults suit the app and the CLI.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// How long a statement waits for another writer before failing with "database is locked".
    pub busy_timeout: Duration,
    /// SQLite page cache per connection, in KiB. Four connections share the file; the OS page
    /// cache holds the rest, so a small cache keeps the dispatcher's memory flat.
    pub cache_kib: u32,
    /// Sync every enqueue commit to disk (synchronous=FULL) so an accepted event survives power
    /// loss. Off only to measure what it costs.
    pub durable_enqueue: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), cache_kib: 8 * 1024, durable_enqueue: true }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    players: Arc<PlayerKeyer>,
    durable_enqueue: bool,
    /// Every batch of log rows this process writes, for live views.
    log_events: tokio::sync::broadcast::Sender<Arc<Vec<crate::model::LogEntry>>>,
    /// Serialises this process's writes on the hot paths (enqueue and traffic counts; claim,
    /// settle and the leases' upkeep) in arrival order: the next writer starts the moment the
    /// previous one commits, where SQLite's busy handler would sleep in growing steps (up to
    /// 100 ms) and let an unlucky writer starve.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Enqueues waiting for the gate: delivery's writes let them go first (an event accepted
    /// from a game server matters more than one delivered a few milliseconds sooner).
    enqueues_waiting: Arc<std::sync::atomic::AtomicUsize>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    busy_timeout: Duration,
}

/// How long one turn of delivery at the write gate lets enqueues go first: under a flood of
/// events delivery still writes a part (a few hundred rows) this often.
const DELIVERY_MAX_DEFER: Duration = Duration::from_millis(50);

/// See [`Store::enqueue_coming`].
#[derive(Debug)]
pub struct EnqueueComing(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for EnqueueComing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, StoreOptions::default()).await
    }

    pub async fn open_with(data_dir: &Path, settings: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a process crash; acknowledged enqueues switch to FULL
            // for their own commit so that they also survive power loss.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma("cache_size", format!("-{}", settings.cache_kib.max(64)))
            .pragma("temp_store", "memory")
            // Checkpoints run beside the writers (checkpoint.rs); the WAL file is cut back to
            // 64 MiB when it restarts.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
            .busy_timeout(settings.busy_timeout);
        // POSTBACK_LOG_SQL=1: every statement and its time as a tracing event (target
        // `sqlx::query`), to find what a slow path spends its time on.
        let options = if std::env::var_os("POSTBACK_LOG_SQL").is_some() {
            sqlx::ConnectOptions::log_statements(options, tracing::log::LevelFilter::Info)
        } else {
            sqlx::ConnectOptions::log_statements(options, tracing::log::LevelFilter::Off)
        };
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        let players = Arc::new(PlayerKeyer::load_or_create(&pool).await?);
        let (log_events, _) = tokio::sync::broadcast::channel(256);
        Ok(Self {
            pool,
            path,
            players,
            durable_enqueue: settings.durable_enqueue,
            log_events,
            write_gate: Default::default(),
            enqueues_waiting: Default::default(),
            checkpointer: Default::default(),
            busy_timeout: settings.busy_timeout,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Bytes of the database in use (pages in use × page size, committed WAL pages included).
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
        let (pages, free, size): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()),
                    (SELECT page_size FROM pragma_page_size())",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from((pages - free) * size).unwrap_or(0))
    }

    /// A turn at the write gate for an enqueue.
    async fn enqueue_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        use std::sync::atomic::Ordering;
        self.enqueues_waiting.fetch_add(1, Ordering::SeqCst);
        let turn = self.write_gate.lock().await;
        self.enqueues_waiting.fetch_sub(1, Ordering::SeqCst);
        turn
    }

    /// Marks an enqueue on its way to the write gate (being routed, or waiting for the writer)
    /// until dropped: delivery lets it go first, as it does the enqueues already at the gate.
    pub fn enqueue_coming(&self) -> EnqueueComing {
        self.enqueues_waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        EnqueueComing(self.enqueues_waiting.clone())
    }

    /// A turn at the write gate for delivery: after the enqueues waiting or coming now (for
    /// [`DELIVERY_MAX_DEFER`] at most, so that delivery always moves on).
    async fn delivery_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let deadline = tokio::time::Instant::now() + DELIVERY_MAX_DEFER;
        while self.enqueues_waiting.load(std::sync::atomic::Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.write_gate.lock().await
    }

    /// After a large commit: copy the WAL into the database soon, in the background.
    pub(crate) fn checkpoint_soon(&self) {
        self.checkpointer.soon(&self.pool, &self.write_gate, self.busy_timeout);
    }

    /// SQLite's own consistency check of the whole file: `ok`, or what is damaged.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&self.pool).await?;
        Ok(rows.join("; "))
    }

    /// Follows the log rows this process writes (each settled batch as one message).
    pub fn subscribe_log(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<crate::model::LogEntry>>> {
        self.log_events.subscribe()
    }

    /// The keyed hash under which the log files a player (never the raw id).
    pub fn player_key(&self, player_id: &str) -> String {
        self.players.key(player_id)
    }
}
