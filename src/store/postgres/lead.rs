//! One worker per config: a session-level advisory lock on a connection of its own (never a
//! pool connection, which would carry the lock to whoever borrows it next). The lock lasts as
//! long as the connection: a worker that dies or loses the server frees its configs, and the
//! next worker that asks takes them over.
//!
//! Workers share the configs: each holds a presence lock of its own (same kind, another class)
//! for as long as it runs, so the live workers are counted from `pg_locks` without heartbeats,
//! and a dead worker stops counting the moment its connection goes.

use sqlx::Connection;

use super::{PgStore, StoreError};
use crate::store::rows::WorkerLabel;

/// How often a worker's "last seen" is written (liveness itself comes from `pg_locks`).
const TOUCH_EVERY_MS: i64 = 10_000;

/// The advisory lock class of config leadership (the second key is the config id).
pub(super) const CONFIG_LOCK_CLASS: i32 = 0x7062_6c00; // "pbl"

/// The advisory lock class of a running worker's presence (the second key is random).
pub(super) const WORKER_LOCK_CLASS: i32 = 0x7062_7700; // "pbw"

/// A worker's presence, held while it runs.
#[derive(Debug)]
pub struct Presence {
    _connection: sqlx::PgConnection,
}

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
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut connection).await?;
            let worker = self.joined_as.lock().unwrap_or_else(|p| p.into_inner()).map(|(key, _)| key);
            self.record_holder(config_id, worker, pid, super::team::wall_ms()).await?;
            Ok(Some(Lead { connection }))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}

impl PgStore {
    /// Marks this worker present until the returned presence is dropped, and files it under
    /// `label` for `workspace status`.
    pub async fn join_workers(&self, label: &WorkerLabel) -> Result<Presence, StoreError> {
        let options = self.pool.connect_options();
        let mut connection = sqlx::ConnectOptions::connect(&*options).await?;
        loop {
            let mut bytes = [0u8; 4];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(WORKER_LOCK_CLASS)
                .bind(i32::from_ne_bytes(bytes))
                .fetch_one(&mut connection)
                .await?;
            // Another worker drew the same number (one in four billion): draw again.
            if taken {
                let key = i32::from_ne_bytes(bytes);
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut connection).await?;
                let now = super::team::wall_ms();
                self.record_worker(key, pid, label, now).await?;
                *self.joined_as.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, now));
                return Ok(Presence { _connection: connection });
            }
        }
    }

    /// How many workers are present on this database (at least 1: the caller is one). A
    /// joined worker's "last seen" moves on here, every [`TOUCH_EVERY_MS`] at most.
    pub async fn live_workers(&self) -> Result<u64, StoreError> {
        let now = super::team::wall_ms();
        let touch = {
            let mut joined = self.joined_as.lock().unwrap_or_else(|p| p.into_inner());
            match joined.as_mut() {
                Some((key, touched)) if now - *touched >= TOUCH_EVERY_MS => {
                    *touched = now;
                    Some(*key)
                }
                _ => None,
            }
        };
        if let Some(key) = touch {
            self.touch_worker(key, now).await?;
        }
        // A two-key advisory lock shows its keys as classid and objid, objsubid 2.
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::bigint = $1
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(i64::from(WORKER_LOCK_CLASS))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0).max(1))
    }
}
