//! Delivery log queries (filtered keyset pages, counts, hourly chart), health and retention.

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{Store, StoreError};
use crate::model::{DeliveryStatus, Health, LogEntry, Network};

/// How the log is filtered; pages go newest first, continuing `before` (at, id).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub since_ms: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub config_id: Option<i64>,
    /// Keyset cursor: the (at, id) of the last row of the previous page.
    pub before: Option<(i64, i64)>,
    pub limit: u32,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// One page of the log, newest first (keyset paging, never OFFSET).
    pub async fn log_page(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, at, config_id, network, event_name, event_id, goal_key, status, http_status, latency_ms, attempt,
                    request_id, error
             FROM delivery_log WHERE 1 = 1",
        );
        if let Some(since) = filter.since_ms {
            q.push(" AND at >= ").push_bind(since);
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(config) = filter.config_id {
            q.push(" AND config_id = ").push_bind(config);
        }
        if let Some((at, id)) = filter.before {
            q.push(" AND (at, id) < (").push_bind(at).push(", ").push_bind(id).push(")");
        }
        q.push(" ORDER BY at DESC, id DESC LIMIT ").push_bind(i64::from(filter.limit.clamp(1, 1000)));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let network: String = r.get("network");
                let status: String = r.get("status");
                Ok(LogEntry {
                    id: r.get("id"),
                    at: r.get("at"),
                    config_id: r.get("config_id"),
                    network: Network::parse(&network)
                        .ok_or_else(|| StoreError::Corrupt(format!("log network '{network}'")))?,
                    event_name: r.get("event_name"),
                    event_id: r.get("event_id"),
                    goal_key: r.get("goal_key"),
                    status: DeliveryStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("log status '{status}'")))?,
                    http_status: r.get("http_status"),
                    latency_ms: r.get("latency_ms"),
                    attempt: r.get("attempt"),
                    request_id: r.get("request_id"),
                    error: r.get("error"),
                })
            })
            .collect()
    }

    /// Attempts per status since a time. One index-only count per status on (status, at, id).
    pub async fn log_counts(&self, since_ms: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut counts = BTreeMap::new();
        for status in DeliveryStatus::ALL {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM delivery_log WHERE status = ? AND at >= ?")
                .bind(status.as_str())
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await?;
            if n > 0 {
                counts.insert(status.as_str().to_owned(), n as u64);
            }
        }
        Ok(counts)
    }

    /// Attempts per hour and status since a time, for a chart: (hour start ms, status, count).
    pub async fn log_hourly(&self, since_ms: i64) -> Result<Vec<(i64, String, u64)>, StoreError> {
        let mut buckets = Vec::new();
        for status in DeliveryStatus::ALL {
            let rows = sqlx::query(
                "SELECT (at / 3600000) * 3600000 AS hour, COUNT(*) FROM delivery_log WHERE status = ? AND at >= ?
                 GROUP BY hour",
            )
            .bind(status.as_str())
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
            buckets.extend(
                rows.iter().map(|r| (r.get::<i64, _>(0), status.as_str().to_owned(), r.get::<i64, _>(1) as u64)),
            );
        }
        buckets.sort();
        Ok(buckets)
    }

    /// Credential failures (a 401/403 with no success since), no recent activity (no attempt in
    /// 24 h), or normal.
    pub async fn health(&self, config_id: i64, now_ms: i64) -> Result<Health, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(at), MAX(CASE WHEN status = 'success' THEN at END), MAX(CASE WHEN credential_failure = 1 THEN at END)
             FROM delivery_log WHERE config_id = ?",
        )
        .bind(config_id)
        .fetch_one(&self.pool)
        .await?;
        let (last, last_success, last_credential): (Option<i64>, Option<i64>, Option<i64>) =
            (row.get(0), row.get(1), row.get(2));
        Ok(match (last, last_credential) {
            (_, Some(cred)) if last_success.is_none_or(|s| s < cred) => Health::CredentialFailures,
            (Some(last), _) if last >= now_ms - DAY_MS => Health::Normal,
            _ => Health::NoRecentActivity,
        })
    }

    /// Retention: deletes log rows older than `retention_ms` and dedup memory older than 48 h,
    /// in chunks so that writers are never blocked for long. Returns the log rows deleted.
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
            if n < 5000 {
                // Delivered events are remembered for dedup for 48 h only.
                sqlx::query("DELETE FROM queue WHERE state = 'done' AND enqueued_at < ?")
                    .bind(now_ms - super::DEDUP_WINDOW_MS)
                    .execute(&self.pool)
                    .await?;
                return Ok(total);
            }
        }
    }

    /// Events actually sent (an HTTP answer came) for a config since a time, per second:
    /// seeds the X window limiter after a restart so the window is never exceeded.
    pub async fn sent_per_second(&self, config_id: i64, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT (at / 1000) * 1000 AS second, COUNT(*) FROM delivery_log
             WHERE config_id = ? AND at >= ? AND http_status IS NOT NULL GROUP BY second",
        )
        .bind(config_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1) as u64)).collect())
    }
}

impl Store {
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
        Ok(())
    }
}
