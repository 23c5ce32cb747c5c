//! The delivery log on SQLite: the queries both engines share (store/shared/log.rs), and
//! retention in chunks at the checkpoints' pace, the X limiter's seed, the synthetic log.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteStore, StoreError};
use crate::store::rows::*;

impl SqliteStore {
    /// Retention: deletes log rows, stored requests, hourly counts and traffic older than
    /// `retention_ms`, and dedup memory older than 48 h, in chunks so that writers are never
    /// blocked for long. Returns the log rows deleted.
    pub async fn prune(&self, now_ms: i64, retention_ms: i64) -> Result<u64, StoreError> {
        let older_than_ms = now_ms - retention_ms;
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM delivery_log WHERE id IN (SELECT id FROM delivery_log WHERE at < ? LIMIT 5000)",
            )
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            self.checkpoint_soon();
            if n < 5000 {
                // Delivered events are remembered for dedup for 48 h only.
                sqlx::query("DELETE FROM queue WHERE state = 'done' AND enqueued_at < ?")
                    .bind(now_ms - DEDUP_WINDOW_MS)
                    .execute(&self.pool)
                    .await?;
                for table in ["delivery_requests WHERE at", "log_hourly WHERE hour", "traffic WHERE hour"] {
                    sqlx::query(&format!("DELETE FROM {table} < ?")).bind(older_than_ms).execute(&self.pool).await?;
                }
                return Ok(total);
            }
        }
    }

    /// Deletes failed and given-up events (their payload, player and all) settled before
    /// `settled_before_ms`: kept for replay until then. Returns how many were purged.
    pub async fn purge_failed(&self, settled_before_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM queue WHERE id IN (SELECT id FROM queue
                     WHERE state = 'dead' AND COALESCE(settled_at, enqueued_at) < ? LIMIT 5000)",
            )
            .bind(settled_before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            if n < 5000 {
                if total > 0 {
                    self.checkpoint_soon();
                }
                return Ok(total);
            }
        }
    }

    /// When the config last delivered anything (its newest Success row).
    pub async fn last_success(&self, config_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT at FROM delivery_log WHERE config_id = ? AND status = 'success' ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(config_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Events actually sent (an HTTP answer came) for a config since a time, per second:
    /// seeds the X window limiter after a restart so the window is never exceeded.
    pub async fn sent_per_second(&self, config_id: i64, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT (at / 1000 + 1) * 1000 AS second, COUNT(*) FROM delivery_log INDEXED BY log_recent
             WHERE at >= ?2 AND config_id = ?1 AND http_status IS NOT NULL GROUP BY second",
        )
        .bind(config_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1) as u64)).collect())
    }
}

impl SqliteStore {
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
        const PER_STATEMENT: u64 = 250_000;
        const PLAYERS: i64 = 100_000;
        let mut conn = self.pool.acquire().await?;
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS synthetic_players (n INTEGER PRIMARY KEY, key TEXT NOT NULL)")
            .execute(&mut *conn)
            .await?;
        let keys: Vec<(i64, String)> = (0..PLAYERS).map(|n| (n, self.player_key(&format!("player-{n}")))).collect();
        for chunk in keys.chunks(1000) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT OR IGNORE INTO synthetic_players (n, key) ");
            insert.push_values(chunk, |mut b, (n, key)| {
                b.push_bind(n).push_bind(key);
            });
            insert.build().execute(&mut *conn).await?;
        }
        let step = (span_ms / rows.max(1) as i64).max(1);
        let mut start = 0;
        while start < rows {
            let end = (start + PER_STATEMENT).min(rows);
            sqlx::query(
                "WITH RECURSIVE seq(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?2)
                 INSERT INTO delivery_log (at, config_id, network, event_name, event_id, player_key, status, http_status,
                                           latency_ms, attempt, request_id, credential_failure, error)
                 SELECT ?3 - n * ?4, ?5, 'tiktok', 'purchase', 'evt-' || n,
                        (SELECT key FROM synthetic_players WHERE synthetic_players.n = seq.n % ?6),
                        CASE n % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'retried' ELSE 'success' END,
                        CASE n % 10 WHEN 0 THEN 400 WHEN 1 THEN 503 ELSE 200 END, 40 + n % 50, 1, NULL, 0,
                        CASE n % 10 WHEN 0 THEN 'HTTP 400: invalid' WHEN 1 THEN 'HTTP 503' END
                 FROM seq",
            )
            .bind(start as i64)
            .bind(end as i64)
            .bind(now_ms)
            .bind(step)
            .bind(config_id)
            .bind(PLAYERS)
            .execute(&mut *conn)
            .await?;
            start = end;
        }
        // The hourly counts the chart reads, as every log insert keeps them.
        self.rebuild_hourly_counts(config_id).await?;
        Ok(())
    }
}
