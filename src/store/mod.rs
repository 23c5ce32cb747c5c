//! Persistence: the only module with SQL. One API (`Store`) over two engines, one folder
//! each: SQLite (`sqlite/`, the embedded default: one file in the data directory) and
//! PostgreSQL (`postgres/`, for a team's shared workspace and its server workers). What is not
//! SQL — the rows the store takes and gives — is shared (`rows.rs`).

mod decode;
mod error;
mod player_key;
mod postgres;
mod rows;
mod settlement;
mod shared;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::model::LogFilter;
use std::collections::HashSet;

#[allow(unused_imports)] // the engines' signatures name many model types
use crate::model::*;
pub use error::StoreError;
pub use rows::*;
pub use settlement::PreparedSettlement;

/// The setting that holds how long failed events are kept for replay.
const FAILED_RETENTION: &str = "failed_retention_ms";

/// A config this worker delivers (see [`Store::lead_config`]); dropping it lets another take
/// it over.
#[derive(Debug)]
pub struct ConfigLead {
    /// PostgreSQL's lock and the connection that holds it; nothing on SQLite.
    held: Option<postgres::Lead>,
}

impl ConfigLead {
    /// Whether it is still held (a lost connection has freed it on the server).
    pub async fn is_alive(&mut self) -> bool {
        match &mut self.held {
            None => true,
            Some(lead) => lead.is_alive().await,
        }
    }
}

/// A delivering worker's presence on a shared store (counted by `Store::live_workers`).
#[derive(Debug)]
pub struct WorkerPresence {
    _held: Option<postgres::Presence>,
}
pub use postgres::{ConfigHolder, TeamStatusRows, WorkerRow};
pub use sqlite::EnqueueComing;

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
#[derive(Clone)]
pub struct StoreOptions {
    /// Where the log's player key is kept: the OS keychain unless given (tests, benchmarks).
    pub keychain: Option<Arc<dyn crate::secrets::SecretStore>>,
    /// SQLite: how long a statement waits for another writer before failing with "database is locked".
    pub busy_timeout: Duration,
    /// SQLite page cache per connection, in KiB. Four connections share the file; the OS page
    /// cache holds the rest, so a small cache keeps the dispatcher's memory flat.
    pub cache_kib: u32,
    /// Sync every enqueue commit to disk (SQLite: synchronous=FULL) so an accepted event
    /// survives power loss. Off only to measure what it costs.
    pub durable_enqueue: bool,
    /// SQLite: a WAL longer than this many pages is started over at the write gate.
    pub wal_restart_pages: i64,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("keychain", &self.keychain.as_ref().map(|_| "given"))
            .field("busy_timeout", &self.busy_timeout)
            .field("cache_kib", &self.cache_kib)
            .field("durable_enqueue", &self.durable_enqueue)
            .field("wal_restart_pages", &self.wal_restart_pages)
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            keychain: None,
            busy_timeout: Duration::from_secs(5),
            cache_kib: 8 * 1024,
            durable_enqueue: true,
            wal_restart_pages: sqlite::DEFAULT_RESTART_PAGES,
        }
    }
}

/// The store: one API, whichever engine holds the data.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Engine,
}

#[derive(Clone, Debug)]
enum Engine {
    // Shared: a store is cloned into every task that writes.
    Sqlite(Arc<sqlite::SqliteStore>),
    Postgres(Arc<postgres::PgStore>),
}

impl Store {
    /// Opens (creating if needed) the SQLite database in `data_dir` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, StoreOptions::default()).await
    }

    pub async fn open_with(data_dir: &Path, settings: StoreOptions) -> Result<Self, StoreError> {
        Ok(Self { engine: Engine::Sqlite(Arc::new(sqlite::SqliteStore::open_with(data_dir, settings).await?)) })
    }

    /// Opens a PostgreSQL database (`postgres://…`, TLS by its `sslmode`) and applies pending
    /// migrations.
    pub async fn open_postgres(url: &str, settings: StoreOptions) -> Result<Self, StoreError> {
        Ok(Self { engine: Engine::Postgres(Arc::new(postgres::PgStore::open(url, settings).await?)) })
    }

    /// Which engine holds the data: `sqlite` or `postgres`.
    pub fn engine_name(&self) -> &'static str {
        match &self.engine {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// The database file, on SQLite.
    pub fn path(&self) -> Option<&Path> {
        match &self.engine {
            Engine::Sqlite(engine) => Some(engine.path()),
            Engine::Postgres(_) => None,
        }
    }

    /// Marks an enqueue on its way to SQLite's write gate until dropped (see [`EnqueueComing`]);
    /// PostgreSQL has no gate to order.
    pub fn enqueue_coming(&self) -> Option<EnqueueComing> {
        match &self.engine {
            Engine::Sqlite(engine) => Some(engine.enqueue_coming()),
            Engine::Postgres(_) => None,
        }
    }

    /// Saves a new config. A game has at most one config per network: a second one is refused.
    pub async fn create_config(
        &self,
        game_id: i64,
        config: &PostbackConfig,
        credential_ref: Option<&str>,
    ) -> Result<i64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.create_config(game_id, config, credential_ref).await,
            Engine::Postgres(engine) => engine.create_config(game_id, config, credential_ref).await,
        }
    }

    /// One config by id.
    pub async fn config(&self, config_id: i64) -> Result<StoredConfig, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.config(config_id).await,
            Engine::Postgres(engine) => engine.config(config_id).await,
        }
    }

    /// The game's config for one network, if it has one.
    pub async fn config_for(&self, game_id: i64, network: Network) -> Result<Option<StoredConfig>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.config_for(game_id, network).await,
            Engine::Postgres(engine) => engine.config_for(game_id, network).await,
        }
    }

    /// Replaces a config's settings and credential reference in one transaction and lets it
    /// deliver again. X goal mappings are replaced only when `config` carries goals, so a
    /// reconnect keeps them.
    pub async fn update_config(
        &self,
        config_id: i64,
        config: &PostbackConfig,
        credential_ref: &str,
    ) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.update_config(config_id, config, credential_ref).await,
            Engine::Postgres(engine) => engine.update_config(config_id, config, credential_ref).await,
        }
    }

    /// The events a TikTok / Reddit config forwards.
    pub async fn set_trigger_events(&self, config_id: i64, events: &[String]) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_trigger_events(config_id, events).await,
            Engine::Postgres(engine) => engine.set_trigger_events(config_id, events).await,
        }
    }

    /// Turns a config's delivery on or off: while off, its events are not queued and those
    /// already queued wait.
    pub async fn set_enabled(&self, config_id: i64, enabled: bool) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_enabled(config_id, enabled).await,
            Engine::Postgres(engine) => engine.set_enabled(config_id, enabled).await,
        }
    }

    /// Removes a config; its queued events and goal mappings go with it (the log stays).
    pub async fn delete_config(&self, config_id: i64) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.delete_config(config_id).await,
            Engine::Postgres(engine) => engine.delete_config(config_id).await,
        }
    }

    /// The game's configs, in network order.
    pub async fn configs(&self, game_id: i64) -> Result<Vec<StoredConfig>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.configs(game_id).await,
            Engine::Postgres(engine) => engine.configs(game_id).await,
        }
    }

    /// Every enabled config of every game, paused ones included; a config whose settings no
    /// longer parse is listed apart with the reason instead of failing the others.
    pub async fn delivery_configs(&self) -> Result<ConfigLoad, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.delivery_configs().await,
            Engine::Postgres(engine) => engine.delivery_configs().await,
        }
    }

    /// One row per network for Settings → Integrations, with each config's health: built from
    /// the store's own calls, the same on every engine.
    pub async fn integrations(&self, game_id: i64) -> Result<Vec<ConfigSummary>, StoreError> {
        self.game(game_id).await?;
        let configs = self.configs(game_id).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut rows = Vec::with_capacity(Network::ALL.len());
        for network in Network::ALL {
            let stored = configs.iter().find(|c| c.config.network() == network);
            let (health, pending) = match stored {
                Some(c) => (self.health(c.id, now).await?, self.pending_count(c.id).await?),
                None => (Health::NoRecentActivity, 0),
            };
            rows.push(summary(game_id, network, stored, health, pending));
        }
        Ok(rows)
    }

    pub async fn create_game(&self, name: &str) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.create_game(name).await,
            Engine::Postgres(engine) => engine.create_game(name).await,
        }
    }

    /// A new game with its default country for phone numbers (checked by the caller).
    pub async fn create_game_in(&self, name: &str, default_country: Option<&str>) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.create_game_in(name, default_country).await,
            Engine::Postgres(engine) => engine.create_game_in(name, default_country).await,
        }
    }

    /// A new demo game (the sandbox's, made by a higher layer): marked so the window can say so.
    pub async fn create_demo_game(&self, name: &str) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.create_demo_game(name).await,
            Engine::Postgres(engine) => engine.create_demo_game(name).await,
        }
    }

    pub async fn rename_game(&self, game_id: i64, name: &str) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.rename_game(game_id, name).await,
            Engine::Postgres(engine) => engine.rename_game(game_id, name).await,
        }
    }

    /// Sets (or with `None` clears) the country that the game's phone numbers written without
    /// a country code are read in: an upper-case ISO 3166-1 alpha-2 code, checked by the caller.
    pub async fn set_default_country(&self, game_id: i64, country: Option<&str>) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_default_country(game_id, country).await,
            Engine::Postgres(engine) => engine.set_default_country(game_id, country).await,
        }
    }

    /// The game form's save: name and default country in one statement.
    pub async fn update_game(&self, game_id: i64, name: &str, country: Option<&str>) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.update_game(game_id, name, country).await,
            Engine::Postgres(engine) => engine.update_game(game_id, name, country).await,
        }
    }

    pub async fn game(&self, game_id: i64) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.game(game_id).await,
            Engine::Postgres(engine) => engine.game(game_id).await,
        }
    }

    pub async fn games(&self) -> Result<Vec<Game>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.games().await,
            Engine::Postgres(engine) => engine.games().await,
        }
    }

    /// What deleting a game removes, for the confirmation.
    pub async fn game_usage(&self, game_id: i64) -> Result<GameUsage, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.game_usage(game_id).await,
            Engine::Postgres(engine) => engine.game_usage(game_id).await,
        }
    }

    /// Deletes a game and everything of it in one transaction: configs (their queues and goal
    /// mappings cascade), goals (and their once-per-player memory), and its delivery log.
    /// Returns the keychain references its configs used, for the caller to remove.
    pub async fn delete_game(&self, game_id: i64) -> Result<Vec<String>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.delete_game(game_id).await,
            Engine::Postgres(engine) => engine.delete_game(game_id).await,
        }
    }

    /// The game the window shows: the one chosen last, else the first.
    pub async fn current_game(&self) -> Result<Option<Game>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.current_game().await,
            Engine::Postgres(engine) => engine.current_game().await,
        }
    }

    /// A setting kept in the database (`None` when never set).
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.meta(name).await,
            Engine::Postgres(engine) => engine.meta(name).await,
        }
    }

    pub async fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_meta(name, value).await,
            Engine::Postgres(engine) => engine.set_meta(name, value).await,
        }
    }

    /// Sets a value unless one is there; returns the value that stands (two processes agree).
    pub async fn set_meta_once(&self, name: &str, value: &str) -> Result<String, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_meta_once(name, value).await,
            Engine::Postgres(engine) => engine.set_meta_once(name, value).await,
        }
    }

    pub async fn set_current_game(&self, game_id: i64) -> Result<Game, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_current_game(game_id).await,
            Engine::Postgres(engine) => engine.set_current_game(game_id).await,
        }
    }

    /// The game's goals in their order (no event tags: those belong to an X config).
    pub async fn goals(&self, game_id: i64) -> Result<Vec<Goal>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.goals(game_id).await,
            Engine::Postgres(engine) => engine.goals(game_id).await,
        }
    }

    /// Adds a goal at the end, or updates the goal with the same key in place.
    pub async fn save_goal(&self, game_id: i64, goal: &Goal) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.save_goal(game_id, goal).await,
            Engine::Postgres(engine) => engine.save_goal(game_id, goal).await,
        }
    }

    pub async fn set_goal_active(&self, game_id: i64, key: &str, active: bool) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_goal_active(game_id, key, active).await,
            Engine::Postgres(engine) => engine.set_goal_active(game_id, key, active).await,
        }
    }

    /// Deletes a goal; its X mappings and once-per-player memory go with it.
    pub async fn delete_goal(&self, game_id: i64, key: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.delete_goal(game_id, key).await,
            Engine::Postgres(engine) => engine.delete_goal(game_id, key).await,
        }
    }

    /// Puts the game's goals in this order (X sends a multi-goal event's conversions in it).
    pub async fn reorder_goals(&self, game_id: i64, keys: &[String]) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.reorder_goals(game_id, keys).await,
            Engine::Postgres(engine) => engine.reorder_goals(game_id, keys).await,
        }
    }

    /// Sets (or, with `None`, removes) the Single Event Tags of an X config's goals, in one
    /// transaction; goals not named keep theirs.
    pub async fn set_goal_tags(&self, config_id: i64, tags: &[(String, Option<String>)]) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.set_goal_tags(config_id, tags).await,
            Engine::Postgres(engine) => engine.set_goal_tags(config_id, tags).await,
        }
    }

    /// Removes an X config's tags that belong to another pixel than `pixel_id` (the pixel
    /// changed); returns how many.
    pub async fn clear_foreign_tags(&self, config_id: i64, pixel_id: &str) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.clear_foreign_tags(config_id, pixel_id).await,
            Engine::Postgres(engine) => engine.clear_foreign_tags(config_id, pixel_id).await,
        }
    }

    /// One page of the log, newest first (keyset paging, never OFFSET). Every shape of filter
    /// reads about one page of index entries, however large the log:
    /// - an event id: its index;
    /// - statuses of a game or config: one range of `(config, status, at, id)` per pair, each
    ///   newest first and cut at the page size, merged (rare and common statuses alike);
    /// - no status: the newest-first walk of the whole log's time index, filtered by config.
    pub async fn log_page(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.log_page(filter).await,
            Engine::Postgres(engine) => engine.log_page(filter).await,
        }
    }

    /// How many rows a filter matches (an export's progress total).
    pub async fn log_count(&self, filter: &LogFilter) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.log_count(filter).await,
            Engine::Postgres(engine) => engine.log_count(filter).await,
        }
    }

    /// One row by id.
    pub async fn log_entry(&self, id: i64) -> Result<Option<(LogEntry, Option<i64>, Option<i64>)>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.log_entry(id).await,
            Engine::Postgres(engine) => engine.log_entry(id).await,
        }
    }

    /// The conversions of one stored request and how each fared (their latest attempt in it).
    pub async fn log_batch(&self, request_ref: i64) -> Result<Vec<BatchItem>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.log_batch(request_ref).await,
            Engine::Postgres(engine) => engine.log_batch(request_ref).await,
        }
    }

    /// The chart and totals of a filter's time range and configs, from the hourly counts kept
    /// with every log insert: bars per hour, per day over 7 days. (Statuses and event ids do
    /// not narrow the chart: it shows the whole range.)
    pub async fn log_summary(&self, filter: &LogFilter, now_ms: i64) -> Result<LogSummary, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.log_summary(filter, now_ms).await,
            Engine::Postgres(engine) => engine.log_summary(filter, now_ms).await,
        }
    }

    /// Re-queues, under their own event ids, the failed and given-up conversions a filter shows
    /// (those still kept as dead rows). Returns how many.
    pub async fn replay_filtered(&self, filter: &LogFilter, now_ms: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.replay_filtered(filter, now_ms).await,
            Engine::Postgres(engine) => engine.replay_filtered(filter, now_ms).await,
        }
    }

    /// Re-queues the named log rows' conversions when they are dead (failed or given up).
    pub async fn replay_log_rows(&self, log_ids: &[i64], now_ms: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.replay_log_rows(log_ids, now_ms).await,
            Engine::Postgres(engine) => engine.replay_log_rows(log_ids, now_ms).await,
        }
    }

    /// Credential failures (a 401/403 with no success since), no recent activity (no attempt in
    /// 24 h), or normal.
    /// Index seeks on (config, status, at) only: instant on millions of rows.
    pub async fn health(&self, config_id: i64, now_ms: i64) -> Result<Health, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.health(config_id, now_ms).await,
            Engine::Postgres(engine) => engine.health(config_id, now_ms).await,
        }
    }

    /// Retention: deletes log rows, stored requests, hourly counts and traffic older than
    /// `retention_ms`, and dedup memory older than 48 h, in chunks so that writers are never
    /// blocked for long. Returns the log rows deleted.
    pub async fn prune(&self, now_ms: i64, retention_ms: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.prune(now_ms, retention_ms).await,
            Engine::Postgres(engine) => engine.prune(now_ms, retention_ms).await,
        }
    }

    /// Deletes failed and given-up events (their payload, player and all) settled before
    /// `settled_before_ms`: kept for replay until then. Returns how many were purged.
    pub async fn purge_failed(&self, settled_before_ms: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.purge_failed(settled_before_ms).await,
            Engine::Postgres(engine) => engine.purge_failed(settled_before_ms).await,
        }
    }

    /// How long failed events are kept for replay (milliseconds), when set; else the caller's
    /// default applies.
    pub async fn failed_retention_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.meta(FAILED_RETENTION).await?.and_then(|v| v.parse().ok()))
    }

    /// Sets (or with `None`, resets to the default) how long failed events are kept.
    pub async fn set_failed_retention_ms(&self, retention_ms: Option<i64>) -> Result<(), StoreError> {
        match retention_ms {
            Some(ms) => self.set_meta(FAILED_RETENTION, &ms.to_string()).await,
            None => match &self.engine {
                Engine::Sqlite(engine) => engine.delete_meta(FAILED_RETENTION).await,
                Engine::Postgres(engine) => engine.delete_meta(FAILED_RETENTION).await,
            },
        }
    }

    /// When the config last delivered anything (its newest Success row).
    pub async fn last_success(&self, config_id: i64) -> Result<Option<i64>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.last_success(config_id).await,
            Engine::Postgres(engine) => engine.last_success(config_id).await,
        }
    }

    /// Events actually sent (an HTTP answer came) for a config since a time, per second, each
    /// counted at the end of its second (never earlier than it was sent, so a window that
    /// follows it is never cut short): seeds the X window limiter after a restart or a
    /// takeover so the window is never exceeded.
    pub async fn sent_per_second(&self, config_id: i64, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.sent_per_second(config_id, since_ms).await,
            Engine::Postgres(engine) => engine.sent_per_second(config_id, since_ms).await,
        }
    }

    /// Benchmarks and demos only: `rows` synthetic attempts of a config, spread evenly over the
    /// `span_ms` before `now_ms` (1 in 10 failed, 1 in 10 retried), filed under 100,000 players
    /// `player-0` … `player-99999` (keyed as real rows are), inserted set-wise in SQL.
    pub async fn fill_synthetic_log(
        &self,
        config_id: i64,
        rows: u64,
        now_ms: i64,
        span_ms: i64,
    ) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.fill_synthetic_log(config_id, rows, now_ms, span_ms).await,
            Engine::Postgres(engine) => engine.fill_synthetic_log(config_id, rows, now_ms, span_ms).await,
        }
    }

    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(engine) => engine.close().await,
            Engine::Postgres(engine) => engine.close().await,
        }
    }

    /// Bytes of the database in use: on SQLite pages in use × page size, committed WAL pages
    /// included; on PostgreSQL the database's size on disk.
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.used_bytes().await,
            Engine::Postgres(engine) => engine.used_bytes().await,
        }
    }

    /// SQLite's own consistency check of the whole file: `ok`, or what is damaged. (SQLite only:
    /// PostgreSQL checks its own pages.)
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.integrity_check().await,
            Engine::Postgres(_) => Err(StoreError::SqliteOnly("integrity_check")),
        }
    }

    /// The right to deliver a config, held by one worker at a time: `None` while another worker
    /// holds it. On SQLite this process is the only one (the data directory's writer lock).
    pub async fn lead_config(&self, config_id: i64) -> Result<Option<ConfigLead>, StoreError> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(Some(ConfigLead { held: None })),
            Engine::Postgres(engine) => {
                Ok(engine.lead_config(config_id).await?.map(|lead| ConfigLead { held: Some(lead) }))
            }
        }
    }

    /// Marks this process a delivering worker while the presence lives (PostgreSQL; nothing to
    /// mark on SQLite, whose one delivering process is the writer-lock holder).
    pub async fn join_workers(&self, label: &WorkerLabel) -> Result<WorkerPresence, StoreError> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(WorkerPresence { _held: None }),
            Engine::Postgres(engine) => Ok(WorkerPresence { _held: Some(engine.join_workers(label).await?) }),
        }
    }

    /// A team workspace's credential sealed under `reference` (PostgreSQL only).
    pub async fn sealed_secret(&self, reference: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.postgres("sealed credentials")?.sealed_secret(reference).await
    }

    pub async fn put_sealed_secret(&self, reference: &str, sealed: &[u8], now_ms: i64) -> Result<(), StoreError> {
        self.postgres("sealed credentials")?.put_sealed_secret(reference, sealed, now_ms).await
    }

    pub async fn delete_sealed_secret(&self, reference: &str) -> Result<(), StoreError> {
        self.postgres("sealed credentials")?.delete_sealed_secret(reference).await
    }

    /// The workers of a shared database and who holds each config (PostgreSQL only).
    pub async fn team_status(&self) -> Result<TeamStatusRows, StoreError> {
        self.postgres("workers")?.team_status().await
    }

    fn postgres(&self, what: &'static str) -> Result<&postgres::PgStore, StoreError> {
        match &self.engine {
            Engine::Postgres(engine) => Ok(engine),
            Engine::Sqlite(_) => Err(StoreError::PostgresOnly(what)),
        }
    }

    /// How many delivering workers share this store now (1 on SQLite).
    pub async fn live_workers(&self) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(1),
            Engine::Postgres(engine) => engine.live_workers().await,
        }
    }

    /// Follows the log rows as they are written (each settled batch as one message): on
    /// SQLite this process's (the only one that delivers), on PostgreSQL every worker's.
    pub async fn subscribe_log(
        &self,
    ) -> Result<tokio::sync::broadcast::Receiver<Arc<Vec<crate::model::LogEntry>>>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => Ok(engine.subscribe_log()),
            Engine::Postgres(engine) => engine.subscribe_log().await,
        }
    }

    /// The keyed hash under which the log files a player (never the raw id).
    pub fn player_key(&self, player_id: &str) -> String {
        match &self.engine {
            Engine::Sqlite(engine) => engine.player_key(player_id),
            Engine::Postgres(engine) => engine.player_key(player_id),
        }
    }

    /// Enqueues conversions, skipping any seen within 48 h. All or nothing, and durable once it
    /// returns: the commit is synced to disk (synchronous=FULL) because the caller tells the
    /// event's source that it was accepted.
    pub async fn enqueue(&self, items: &[NewDelivery<'_>], now_ms: i64) -> Result<EnqueueReport, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.enqueue(items, now_ms).await,
            Engine::Postgres(engine) => engine.enqueue(items, now_ms).await,
        }
    }

    /// [`Store::enqueue`], and in the same transaction (one synced commit, not two) the traffic
    /// counters `traffic` derives from what was queued.
    pub async fn enqueue_counted(
        &self,
        items: &[NewDelivery<'_>],
        now_ms: i64,
        traffic: impl Fn(&EnqueueReport) -> Vec<TrafficCount>,
    ) -> Result<EnqueueReport, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.enqueue_counted(items, now_ms, traffic).await,
            Engine::Postgres(engine) => engine.enqueue_counted(items, now_ms, traffic).await,
        }
    }

    /// Returns expired leases (a dispatcher died or hung mid-batch) to the queue.
    pub async fn reclaim_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.reclaim_expired_leases(now_ms).await,
            Engine::Postgres(engine) => engine.reclaim_expired_leases(now_ms).await,
        }
    }

    /// Keeps the rows of one claim leased until `until` (the heartbeat of a running batch).
    /// Returns how many rows the token still holds.
    pub async fn extend_lease(&self, lease_token: &str, until: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.extend_lease(lease_token, until).await,
            Engine::Postgres(engine) => engine.extend_lease(lease_token, until).await,
        }
    }

    /// Puts every row of one claim back unchanged (its task failed before settling).
    pub async fn release_lease(&self, lease_token: &str) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.release_lease(lease_token).await,
            Engine::Postgres(engine) => engine.release_lease(lease_token).await,
        }
    }

    /// Claims up to `limit` ready rows of a config under `lease_token` until
    /// `now + lease_ms`, oldest first. A token names one claim: use a new one for each.
    pub async fn claim(
        &self,
        config_id: i64,
        lease_token: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Leased>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.claim(config_id, lease_token, now_ms, lease_ms, limit).await,
            Engine::Postgres(engine) => engine.claim(config_id, lease_token, now_ms, lease_ms, limit).await,
        }
    }

    /// Queue size: (ready, leased, dead).
    pub async fn queue_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.queue_counts().await,
            Engine::Postgres(engine) => engine.queue_counts().await,
        }
    }

    /// Conversions of a config still waiting to be delivered (ready or in flight).
    pub async fn pending_count(&self, config_id: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.pending_count(config_id).await,
            Engine::Postgres(engine) => engine.pending_count(config_id).await,
        }
    }

    /// A config's waiting conversions by event time: the oldest, and how many happened before
    /// `cutoff_ms` (epoch ms). From an index, whatever the backlog.
    pub async fn queued_age(&self, config_id: i64, cutoff_ms: i64) -> Result<QueuedAge, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.queued_age(config_id, cutoff_ms).await,
            Engine::Postgres(engine) => engine.queued_age(config_id, cutoff_ms).await,
        }
    }

    /// The earliest time a waiting row of an active config may run: its backoff time (not before
    /// its config's network is probed again), or the end of a lease (perhaps of a dispatcher
    /// that died). `None`: nothing waits. Index lookups only, per config.
    pub async fn next_run_at(&self) -> Result<Option<i64>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.next_run_at().await,
            Engine::Postgres(engine) => engine.next_run_at().await,
        }
    }

    /// Puts a config's dead (failed or given-up) rows back into the queue under their own event
    /// ids. Named events that were delivered, are still pending or are unknown are refused with
    /// the reason, and nothing is re-queued then. Returns how many rows were re-queued.
    pub async fn replay(&self, replay: &Replay, now_ms: i64) -> Result<Result<u64, ReplayRefusal>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.replay(replay, now_ms).await,
            Engine::Postgres(engine) => engine.replay(replay, now_ms).await,
        }
    }

    /// Lets a paused config deliver again (its credentials changed).
    pub async fn unpause(&self, config_id: i64) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.unpause(config_id).await,
            Engine::Postgres(engine) => engine.unpause(config_id).await,
        }
    }

    /// Pauses a config with a reason a person can act on (a row that cannot be read, a task
    /// that keeps failing).
    pub async fn pause(&self, config_id: i64, reason: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.pause(config_id, reason).await,
            Engine::Postgres(engine) => engine.pause(config_id, reason).await,
        }
    }

    /// Forgets a player: future events are skipped, queued ones removed, their items in stored
    /// requests redacted and the log unlinked; the list keeps only the keyed hash of the id.
    /// Returns (queued conversions removed, log rows unlinked). The log is updated in small
    /// transactions through its player index, so a dispatcher never waits long for the lock.
    /// Deleted data is overwritten (`secure_delete`) and the WAL copied back and emptied, so
    /// nothing of the player stays readable in the files.
    pub async fn erase_player(&self, player_id: &str, now_ms: i64) -> Result<(u64, u64), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.erase_player(player_id, now_ms).await,
            Engine::Postgres(engine) => engine.erase_player(player_id, now_ms).await,
        }
    }

    /// How many players were ever erased: when it has not changed since a batch was checked,
    /// no player of the batch was erased meanwhile (one cheap count instead of a lookup).
    pub async fn erasure_count(&self) -> Result<i64, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.erasure_count().await,
            Engine::Postgres(engine) => engine.erasure_count().await,
        }
    }

    /// Which of these players were erased (looked up by their keyed hashes).
    pub async fn erased_among(&self, players: &[&str]) -> Result<HashSet<String>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.erased_among(players).await,
            Engine::Postgres(engine) => engine.erased_among(players).await,
        }
    }

    pub async fn stored_request(&self, id: i64) -> Result<Option<StoredRequest>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.stored_request(id).await,
            Engine::Postgres(engine) => engine.stored_request(id).await,
        }
    }

    /// Applies one batch's outcomes (see the module's notes on order and size): prepared, then
    /// written.
    pub async fn settle(&self, s: Settlement) -> Result<SettleReport, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.settle(s).await,
            Engine::Postgres(engine) => engine.settle(s).await,
        }
    }

    /// The CPU work of settling (compressing bodies, keying players), without the store's lock:
    /// done on the caller's thread, which may run at a lower priority than the writes.
    pub fn prepare_settlement(&self, settlement: Settlement) -> Result<PreparedSettlement, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.prepare_settlement(settlement),
            Engine::Postgres(engine) => engine.prepare_settlement(settlement),
        }
    }

    /// Writes a prepared settlement. Every row statement matches the settlement's lease token,
    /// so rows another dispatcher re-claimed meanwhile are left alone and counted as lost.
    pub async fn settle_prepared(&self, prepared: &PreparedSettlement) -> Result<SettleReport, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.settle_prepared(prepared).await,
            Engine::Postgres(engine) => engine.settle_prepared(prepared).await,
        }
    }

    /// Adds counters to the hour of `now_ms`.
    pub async fn record_traffic(&self, now_ms: i64, counts: &[TrafficCount]) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.record_traffic(now_ms, counts).await,
            Engine::Postgres(engine) => engine.record_traffic(now_ms, counts).await,
        }
    }

    /// The steady state after a bulk write (a benchmark's fill, a large import): on PostgreSQL
    /// what autovacuum does in its own time (VACUUM, ANALYZE); nothing on SQLite.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(engine) => engine.refresh_statistics().await,
        }
    }

    /// One family of a game's counters (kinds starting with `prefix`, e.g. `fresh:`) summed over
    /// `[since, until)` per config and kind: `(config id, kind, count)`.
    pub async fn traffic_family(
        &self,
        game_id: i64,
        prefix: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.traffic_family(game_id, prefix, since_ms, until_ms).await,
            Engine::Postgres(engine) => engine.traffic_family(game_id, prefix, since_ms, until_ms).await,
        }
    }

    /// A game's counters summed over `[since, until)`.
    pub async fn traffic(&self, game_id: i64, since_ms: i64, until_ms: i64) -> Result<Vec<TrafficCount>, StoreError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.traffic(game_id, since_ms, until_ms).await,
            Engine::Postgres(engine) => engine.traffic(game_id, since_ms, until_ms).await,
        }
    }
}

/// A network's row on Settings → Integrations.
fn summary(
    game_id: i64,
    network: Network,
    stored: Option<&StoredConfig>,
    health: Health,
    pending: u64,
) -> ConfigSummary {
    ConfigSummary {
        game_id,
        config_id: stored.map(|c| c.id),
        network,
        display_name: network.display_name().to_owned(),
        status: match stored {
            Some(c) if c.credential_ref.is_some() && c.paused_reason.is_some() => IntegrationStatus::Paused,
            Some(c) if c.credential_ref.is_some() => IntegrationStatus::Connected,
            _ => IntegrationStatus::NotConnected,
        },
        enabled: stored.is_some_and(|c| c.enabled),
        pixel: stored.map(|c| c.config.pixel().to_owned()),
        base_url: stored.and_then(|c| c.config.base_url().map(str::to_owned)),
        health,
        trigger_events: stored.map(|c| c.config.trigger_events().to_vec()).unwrap_or_default(),
        paused_reason: stored.and_then(|c| c.paused_reason.clone()),
        offline_since: stored.and_then(|c| c.offline.since),
        offline_reason: stored.and_then(|c| c.offline.reason.clone()),
        pending,
        gaps: stored.map(|c| decode::setup_gaps(&c.config)).unwrap_or_default(),
        unmapped_goals: match stored.map(|c| &c.config) {
            Some(PostbackConfig::X(x)) => {
                x.goals.iter().filter(|g| g.active && g.event_tag.is_none()).map(|g| g.name.clone()).collect()
            }
            _ => Vec::new(),
        },
        worker: None,
    }
}
