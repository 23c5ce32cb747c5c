//! One worker per config: a session-level advisory lock on a connection of its own (never a
//! pool connection, which would carry the lock to whoever borrows it next). The lock lasts as
//! long as the connection: a worker that dies or loses the server frees its configs, and the
//! next worker that asks takes them over.

use sqlx::Connection;

use super::{PgStore, StoreError};

/// The advisory lock class of config leadership (the second key is the config id).
const CONFIG_LOCK_CLASS: i32 = 0x7062_6c00; // "pbl"

/// A held config.
#[derive(Debug)]
pub struct Lead {
    connection: sqlx::PgConnection,
}

impl Lead {
    /// Whether the lock is still held: its connection still answers.
    pub async fn is_alive(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }
}

impl PgStore {
    /// Takes the config's lead unless another worker holds it (`None` then). Never waits.
    pub async fn lead_config(&self, config_id: i64) -> Result<Option<Lead>, StoreError> {
        let options = self.pool.connect_options();
        let mut connection = sqlx::ConnectOptions::connect(&*options).await?;
        // Config ids beyond 2^31 share a lock with a smaller one: at worst two configs are
        // delivered by one worker.
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(CONFIG_LOCK_CLASS)
            .bind(config_id as i32)
            .fetch_one(&mut connection)
            .await?;
        if held {
            Ok(Some(Lead { connection }))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}
