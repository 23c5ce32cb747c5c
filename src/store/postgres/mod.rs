//! The PostgreSQL engine, for a team's shared workspace and its server workers: the same
//! store API as SQLite over one database that any number of processes use at once. TLS to
//! the server follows the URL's `sslmode` (`require`, `verify-full` with `sslrootcert`).
//!
//! Everything the store offers, but SQLite's own file check (`integrity_check`): PostgreSQL
//! checks its pages itself.

mod erasure;
mod follow;
mod lead;
mod log;
mod queue;
mod retention;
mod settle;
mod team;
mod traffic;

// Games, goals and configs: the statements both engines share (store/shared/).
mod configs {
    crate::store::shared::configs::configs!(
        store = super::PgStore,
        connection = sqlx::PgConnection,
        row = sqlx::postgres::PgRow,
        now = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
        begin = "BEGIN"
    );
}
mod games {
    crate::store::shared::games::games!(
        store = super::PgStore,
        connection = sqlx::PgConnection,
        row = sqlx::postgres::PgRow,
        now = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
        begin = "BEGIN"
    );
}
mod log_queries {
    crate::store::shared::log::log!(
        store = super::PgStore,
        database = sqlx::Postgres,
        row = sqlx::postgres::PgRow,
        begin = "BEGIN",
        planner_knows_configs = true
    );
}
mod goals {
    crate::store::shared::goals::goals!(
        store = super::PgStore,
        connection = sqlx::PgConnection,
        row = sqlx::postgres::PgRow,
        now = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
        begin = "BEGIN"
    );
}

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::player_key::PlayerKeyer;
use super::{StoreError, StoreOptions};
use crate::model::LogEntry;
pub use lead::{Lead, Presence};
pub use team::{ConfigHolder, TeamStatusRows, WorkerRow};

/// The lock every opening process takes while it migrates and reads the player key, so that
/// two workers starting on a new database agree on one key (an arbitrary constant).
const OPEN_LOCK: i64 = 0x706f_7374_6261_636b; // "postback"

#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    players: Arc<PlayerKeyer>,
    /// Every batch of log rows any process writes, for live views (see follow.rs).
    log_events: tokio::sync::broadcast::Sender<Arc<Vec<LogEntry>>>,
    /// This handle's worker (its presence lock key) and when its "last seen" was last written.
    joined_as: Arc<std::sync::Mutex<Option<(i32, i64)>>>,
    /// The task that follows every process's log rows, once someone subscribes.
    following: tokio::sync::OnceCell<follow::FollowTask>,
}

/// The log's player key of a shared database, created by the first process that opens it
/// (under the open lock). It is in the database, not in one computer's keychain: every desktop
/// and worker of the team files and erases players under the same key (see
/// docs/ARCHITECTURE.md, "Team workspace").
///
/// A database first opened by an earlier version kept its key in that computer's keychain:
/// that key moves into the database, so its erasures keep finding the rows filed under it.
async fn shared_player_key(
    conn: &mut sqlx::PgConnection,
    keychain: Option<Arc<dyn crate::secrets::SecretStore>>,
) -> Result<PlayerKeyer, StoreError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE name = 'player_key'").fetch_optional(&mut *conn).await?;
    if let Some(stored) = stored {
        return PlayerKeyer::from_hex(&stored);
    }
    // Only a database with players filed already asks the keychain (a new one never does).
    let filed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM delivery_log WHERE player_key IS NOT NULL)
             OR EXISTS (SELECT 1 FROM erased_player_keys) OR EXISTS (SELECT 1 FROM goal_conversions)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let earlier = match filed {
        true => earlier_player_key(conn, keychain).await?,
        false => None,
    };
    let key = match earlier {
        Some(secret) => zeroize::Zeroizing::new(secret.expose().to_owned()),
        None => PlayerKeyer::fresh_hex()?,
    };
    PlayerKeyer::from_hex(&key)?;
    sqlx::query("INSERT INTO meta (name, value) VALUES ('player_key', $1) ON CONFLICT (name) DO NOTHING")
        .bind(key.as_str())
        .execute(&mut *conn)
        .await?;
    let stored: String =
        sqlx::query_scalar("SELECT value FROM meta WHERE name = 'player_key'").fetch_one(&mut *conn).await?;
    PlayerKeyer::from_hex(&stored)
}

/// The player key an earlier version kept in this computer's keychain for the database, if
/// any. No keychain (a server) or one that does not answer within a few seconds: none.
async fn earlier_player_key(
    conn: &mut sqlx::PgConnection,
    keychain: Option<Arc<dyn crate::secrets::SecretStore>>,
) -> Result<Option<crate::secrets::Secret>, StoreError> {
    let instance: String =
        sqlx::query_scalar("SELECT value FROM meta WHERE name = 'instance_id'").fetch_one(&mut *conn).await?;
    let keychain = keychain.unwrap_or_else(|| Arc::new(crate::secrets::Keychain::system()));
    let entry = format!("player-key-{instance}");
    let asked = crate::secrets::blocking(keychain, move |k| k.get(&entry));
    Ok(tokio::time::timeout(Duration::from_secs(5), asked).await.ok().and_then(Result::ok).flatten())
}

/// A URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the PostgreSQL URL".into(),
    }
}

impl PgStore {
    pub async fn open(url: &str, settings: StoreOptions) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadDatabaseUrl { url: redacted(url), reason: e.to_string() })?;
        let options = if std::env::var_os("POSTBACK_LOG_SQL").is_some() {
            sqlx::ConnectOptions::log_statements(options, tracing::log::LevelFilter::Info)
        } else {
            sqlx::ConnectOptions::log_statements(options, tracing::log::LevelFilter::Off)
        };
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unreachable { url: redacted(url), reason: e.to_string() })?;
        let mut conn = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(OPEN_LOCK).execute(&mut *conn).await?;
        let opened = async {
            sqlx::migrate!("src/store/postgres/migrations").run(&mut *conn).await?;
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
            sqlx::query("INSERT INTO meta (name, value) VALUES ('instance_id', $1) ON CONFLICT (name) DO NOTHING")
                .bind(hex::encode(bytes))
                .execute(&mut *conn)
                .await?;
            shared_player_key(&mut conn, settings.keychain.clone()).await
        }
        .await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(OPEN_LOCK).execute(&mut *conn).await;
        let players = opened?;
        let (log_events, _) = tokio::sync::broadcast::channel(256);
        Ok(Self {
            pool,
            players: Arc::new(players),
            log_events,
            joined_as: Default::default(),
            following: Default::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The keyed hash under which the log files a player (never the raw id).
    pub fn player_key(&self, player_id: &str) -> String {
        self.players.key(player_id)
    }

    pub async fn queued_age(&self, config_id: i64, cutoff_ms: i64) -> Result<super::QueuedAge, StoreError> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT (SELECT MIN(occurred_at) FROM queue WHERE config_id = $1 AND state = 'ready'),
                    (SELECT COUNT(*) FROM queue WHERE config_id = $1 AND state = 'ready' AND occurred_at < $2)",
        )
        .bind(config_id)
        .bind(cutoff_ms)
        .fetch_one(&self.pool)
        .await?;
        let before: i64 = row.get(1);
        Ok(super::QueuedAge { oldest_occurred_ms: row.get(0), before_cutoff: u64::try_from(before).unwrap_or(0) })
    }

    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        // VACUUM too: it marks the pages all-visible, so index-only scans read no table rows.
        sqlx::query("VACUUM (ANALYZE)").execute(&self.pool).await?;
        Ok(())
    }

    /// Conversions of a config still waiting to be delivered (ready or in flight).
    pub async fn pending_count(&self, config_id: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue WHERE config_id = $1 AND state = 'ready'")
            .bind(config_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
