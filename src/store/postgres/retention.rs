//! What the log and the queue keep, and for how long, on PostgreSQL; and what the X window
//! limiter and the health card read back from the log.

use sqlx::Row;

use super::{PgStore, StoreError};
use crate::store::rows::DEDUP_WINDOW_MS;

/// Rows per DELETE: short transactions, so that a worker's settle never waits long.
const PRUNE_ROWS: i64 = 5000;

impl PgStore {
    /// Retention: deletes log rows, stored requests, hourly counts and traffic older than
    /// `retention_ms`, and dedup memory older than 48 h. Returns the log rows deleted.
    pub async fn prune(&self, now_ms: i64, retention_ms: i64) -> Result<u64, StoreError> {
        let older_than_ms = now_ms - retention_ms;
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM delivery_log WHERE id IN (SELECT id FROM delivery_log WHERE at < $1 LIMIT $2)",
            )
            .bind(older_than_ms)
            .bind(PRUNE_ROWS)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            if n < PRUNE_ROWS as u64 {
                break;
            }
        }
        // Delivered events are remembered for dedup for 48 h only.
        sqlx::query("DELETE FROM queue WHERE state = 'done' AND enqueued_at < $1")
            .bind(now_ms - DEDUP_WINDOW_MS)
            .execute(&self.pool)
            .await?;
        for table in ["delivery_requests WHERE at", "log_hourly WHERE hour", "traffic WHERE hour"] {
            sqlx::query(&format!("DELETE FROM {table} < $1")).bind(older_than_ms).execute(&self.pool).await?;
        }
        Ok(total)
    }

    /// Deletes failed and given-up events settled before `settled_before_ms` (kept for replay
    /// until then). Returns how many were purged.
    pub async fn purge_failed(&self, settled_before_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM queue WHERE id IN (SELECT id FROM queue
                     WHERE state = 'dead' AND COALESCE(settled_at, enqueued_at) < $1 LIMIT $2)",
            )
            .bind(settled_before_ms)
            .bind(PRUNE_ROWS)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            if n < PRUNE_ROWS as u64 {
                return Ok(total);
            }
        }
    }

    /// When the config last delivered anything (its newest Success row).
    pub async fn last_success(&self, config_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT at FROM delivery_log WHERE config_id = $1 AND status = 'success' ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(config_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Events actually sent (an HTTP answer came) for a config since a time, per second: seeds
    /// the X window limiter so that the window is never exceeded.
    pub async fn sent_per_second(&self, config_id: i64, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT (at / 1000 + 1) * 1000 AS second, COUNT(*) FROM delivery_log
             WHERE at >= $2 AND config_id = $1 AND http_status IS NOT NULL GROUP BY second ORDER BY second",
        )
        .bind(config_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?.max(0) as u64))).collect()
    }
}
