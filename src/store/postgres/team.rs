//! A team workspace's rows: sealed credentials, the workers that deliver and which of them
//! holds each config. Liveness is read from `pg_locks` (see lead.rs), never from a heartbeat.

use super::{PgStore, StoreError};
use crate::store::rows::WorkerLabel;

/// A worker as `postback workspace status` and the window show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerRow {
    pub host: String,
    pub version: String,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    pub live: bool,
}

/// Who delivers a config: the worker that took its lead last, and whether it still holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfigHolder {
    pub config_id: i64,
    pub host: Option<String>,
    pub since_ms: i64,
    pub live: bool,
    /// When its worker was last seen running (`None` when the worker row is gone).
    pub last_seen_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamStatusRows {
    pub workers: Vec<WorkerRow>,
    pub holders: Vec<ConfigHolder>,
}

/// Milliseconds since the Unix epoch, for "since" and "last seen" (the store keeps no clock).
pub(super) fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Rows of workers gone this long are forgotten when another joins.
const FORGET_WORKERS_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;

impl PgStore {
    pub async fn sealed_secret(&self, reference: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn put_sealed_secret(&self, reference: &str, sealed: &[u8], now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sealed_secrets (reference, sealed, sealed_at) VALUES ($1, $2, $3)
             ON CONFLICT (reference) DO UPDATE SET sealed = excluded.sealed, sealed_at = excluded.sealed_at",
        )
        .bind(reference)
        .bind(sealed)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_sealed_secret(&self, reference: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sealed_secrets WHERE reference = $1").bind(reference).execute(&self.pool).await?;
        Ok(())
    }

    /// Files the worker whose presence lock `lock_key` the connection `backend_pid` holds.
    pub(super) async fn record_worker(
        &self,
        lock_key: i32,
        backend_pid: i32,
        label: &WorkerLabel,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM workers WHERE last_seen < $1")
            .bind(now_ms - FORGET_WORKERS_AFTER_MS)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO workers (lock_key, backend_pid, host, version, started_at, last_seen)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (lock_key) DO UPDATE SET backend_pid = excluded.backend_pid, host = excluded.host,
                 version = excluded.version, started_at = excluded.started_at, last_seen = excluded.last_seen",
        )
        .bind(lock_key)
        .bind(backend_pid)
        .bind(&label.host)
        .bind(&label.version)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn touch_worker(&self, lock_key: i32, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE workers SET last_seen = $2 WHERE lock_key = $1")
            .bind(lock_key)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Files who took a config's lead (the worker of this handle, if it joined).
    pub(super) async fn record_holder(
        &self,
        config_id: i64,
        worker: Option<i32>,
        backend_pid: i32,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO config_holders (config_id, worker, backend_pid, since) VALUES ($1, $2, $3, $4)
             ON CONFLICT (config_id) DO UPDATE SET worker = excluded.worker, backend_pid = excluded.backend_pid,
                 since = excluded.since",
        )
        .bind(config_id)
        .bind(worker)
        .bind(backend_pid)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The workers and config holders, each marked live from `pg_locks`.
    pub async fn team_status(&self) -> Result<TeamStatusRows, StoreError> {
        let workers: Vec<(String, String, i64, i64, bool)> = sqlx::query_as(
            "SELECT w.host, w.version, w.started_at, w.last_seen,
                    EXISTS (SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                              AND l.classid::bigint = $1 AND l.objid::bigint = (w.lock_key::bigint & 4294967295)
                              AND l.pid = w.backend_pid) AS live
             FROM workers w ORDER BY live DESC, w.started_at",
        )
        .bind(i64::from(super::lead::WORKER_LOCK_CLASS))
        .fetch_all(&self.pool)
        .await?;
        let holders: Vec<ConfigHolder> = sqlx::query_as(
            "SELECT h.config_id, w.host, h.since AS since_ms,
                    EXISTS (SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                              AND l.classid::bigint = $1 AND l.objid::bigint = (h.config_id & 4294967295)
                              AND l.pid = h.backend_pid) AS live, w.last_seen AS last_seen_ms
             FROM config_holders h LEFT JOIN workers w ON w.lock_key = h.worker
             ORDER BY h.config_id",
        )
        .bind(i64::from(super::lead::CONFIG_LOCK_CLASS))
        .fetch_all(&self.pool)
        .await?;
        Ok(TeamStatusRows {
            workers: workers
                .into_iter()
                .map(|(host, version, started_at_ms, last_seen_ms, live)| WorkerRow {
                    host,
                    version,
                    started_at_ms,
                    last_seen_ms,
                    live,
                })
                .collect(),
            holders,
        })
    }
}
