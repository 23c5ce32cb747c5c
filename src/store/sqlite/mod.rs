//! The SQLite engine (sqlx, bundled SQLite): one database file per data directory, WAL
//! journal, migrations embedded in the binary. Only this process writes its hot paths, in the
//! order of the write gate; checkpoints run beside the writers.

mod checkpoint;
mod log;
mod player_key;
mod queue;
mod requests;
mod settle;
mod traffic;
mod write_gate;

// Games, goals and configs: the statements both engines share (store/shared/).
mod configs {
    crate::store::shared::configs::configs!(
        store = super::SqliteStore,
        connection = sqlx::SqliteConnection,
        row = sqlx::sqlite::SqliteRow,
        now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        begin = "BEGIN IMMEDIATE"
    );
}
mod games {
    crate::store::shared::games::games!(
        store = super::SqliteStore,
        connection = sqlx::SqliteConnection,
        row = sqlx::sqlite::SqliteRow,
        now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        begin = "BEGIN IMMEDIATE"
    );
}
mod log_queries {
    crate::store::shared::log::log!(
        store = super::SqliteStore,
        database = sqlx::Sqlite,
        row = sqlx::sqlite::SqliteRow,
        begin = "BEGIN IMMEDIATE",
        planner_knows_configs = false
    );
}
mod goals {
    crate::store::shared::goals::goals!(
        store = super::SqliteStore,
        connection = sqlx::SqliteConnection,
        row = sqlx::sqlite::SqliteRow,
        now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        begin = "BEGIN IMMEDIATE"
    );
}

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::{StoreError, StoreOptions, DB_FILE};
pub(crate) use checkpoint::DEFAULT_RESTART_PAGES;
pub use write_gate::EnqueueComing;

use super::player_key::PlayerKeyer;

/// The data directory 0700 and the database with its WAL and shared memory 0600, before SQLite
/// opens it: SQLite creates the WAL and shared-memory files with the database file's mode.
fn make_private(data_dir: &Path, db: &Path) -> std::io::Result<()> {
    crate::private_files::create_dir(data_dir)?;
    crate::private_files::open_or_create(db)?;
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        crate::private_files::restrict(Path::new(&name), 0o600)?;
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    players: Arc<PlayerKeyer>,
    durable_enqueue: bool,
    /// Every batch of log rows this process writes, for live views.
    log_events: tokio::sync::broadcast::Sender<Arc<Vec<crate::model::LogEntry>>>,
    /// The order of this process's hot-path writes (write_gate.rs).
    write_gate: Arc<write_gate::WriteGate>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    busy_timeout: Duration,
    /// How connections are opened (the enqueue connection's, below).
    connect_options: SqliteConnectOptions,
    /// The connection every enqueue writes on, opened on first use and synced on each commit
    /// (synchronous=FULL) for good. Enqueues hold the write gate, so they never wait for it.
    /// Taken from the pool, an enqueue switched it to FULL and back: two of a small commit's
    /// ~14 round trips to SQLite's thread.
    enqueue_connection: Arc<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and applies pending migrations.
    pub async fn open_with(data_dir: &Path, settings: StoreOptions) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        make_private(data_dir, &path)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
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
            // Reads straight from the mapped file instead of a copy per page read (pread).
            .pragma("mmap_size", (256 * 1024 * 1024).to_string())
            // Deleted rows are overwritten with zeros, in their pages and in freed pages: an
            // erased player (or a purged payload) is not recoverable from the file.
            .pragma("secure_delete", "on")
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
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await?;
        sqlx::migrate!("src/store/sqlite/migrations").run(&pool).await?;
        let keychain = settings.keychain.clone().unwrap_or_else(|| Arc::new(crate::secrets::Keychain::system()));
        let (players, moved_out_of_file) = player_key::load_or_create(&pool, keychain).await?;
        let (log_events, _) = tokio::sync::broadcast::channel(256);
        let store = Self {
            pool,
            path,
            players: Arc::new(players),
            durable_enqueue: settings.durable_enqueue,
            log_events,
            write_gate: Default::default(),
            checkpointer: Arc::new(checkpoint::Checkpointer::new(settings.wal_restart_pages)),
            busy_timeout: settings.busy_timeout,
            connect_options: options,
            enqueue_connection: Default::default(),
        };
        if moved_out_of_file {
            // The old key and raw ids are overwritten in the database; their WAL frames too.
            store.empty_wal().await;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        if let Some(conn) = self.enqueue_connection.lock().await.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
        self.pool.close().await;
    }

    /// A new connection for enqueues: synced commits unless `durable_enqueue` is off.
    async fn open_enqueue_connection(&self) -> Result<sqlx::SqliteConnection, StoreError> {
        // A closed store stays closed: no enqueue opens a connection after `close`.
        if self.pool.is_closed() {
            return Err(sqlx::Error::PoolClosed.into());
        }
        let sync = if self.durable_enqueue { SqliteSynchronous::Full } else { SqliteSynchronous::Normal };
        Ok(sqlx::ConnectOptions::connect(&self.connect_options.clone().synchronous(sync)).await?)
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
        self.write_gate.enqueue_turn().await
    }

    /// Marks an enqueue on its way to the write gate until dropped (see [`EnqueueComing`]).
    pub fn enqueue_coming(&self) -> EnqueueComing {
        self.write_gate.enqueue_coming()
    }

    /// A turn at the write gate for delivery: after the enqueues waiting or coming now.
    async fn delivery_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_gate.delivery_turn().await
    }

    /// After a large commit: copy the WAL into the database soon, in the background.
    pub(crate) fn checkpoint_soon(&self) {
        self.checkpointer.soon(&self.pool, &self.write_gate, self.busy_timeout);
    }

    /// After an erasure: the WAL copied into the database and emptied, so that the erased
    /// data (overwritten in the database by `secure_delete`) is in no WAL frame either.
    pub(crate) async fn empty_wal(&self) {
        match checkpoint::truncate(&self.pool, &self.write_gate, self.busy_timeout).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "readers kept the WAL busy; erased data stays in its old frames until the WAL starts over"
            ),
            Err(e) => tracing::warn!(error = %e, "could not empty the WAL after an erasure"),
        }
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
