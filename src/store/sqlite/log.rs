//! Delivery log queries: filtered keyset pages, hourly chart and totals, a row's batch,
//! replay of what a filter shows, health, retention.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteStore, StoreError};
use crate::model::{
    BatchItem, ChartBucket, DeliveryStatus, Health, LogEntry, LogFilter, LogSummary, LogTotals, Network,
};
use crate::store::rows::*;

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
const LOG_COLUMNS: &str = "l.id, l.at, l.config_id, l.network, l.event_name, l.event_id, l.goal_key, l.status,
     l.http_status, l.latency_ms, l.attempt, l.request_id, l.error";

/// Appends a filter's conditions (on `delivery_log l`) to a query. `in_time_order`: the
/// config terms are written so that no index is used for them (`+`), which leaves the planner
/// the newest-first walk of `log_recent` that a LIMIT can stop early.
fn push_conditions(q: &mut QueryBuilder<'_, Sqlite>, filter: &LogFilter, in_time_order: bool) {
    let column = if in_time_order { " AND +l.config_id" } else { " AND l.config_id" };
    if let Some(game) = filter.game_id {
        q.push(column).push(" IN (SELECT id FROM configs WHERE game_id = ").push_bind(game).push(")");
    }
    if let Some(config) = filter.config_id {
        q.push(column).push(" = ").push_bind(config);
    }
    if !filter.statuses.is_empty() {
        q.push(" AND l.status IN (");
        let mut list = q.separated(", ");
        for status in &filter.statuses {
            list.push_bind(status.as_str());
        }
        q.push(")");
    }
    if let Some(since) = filter.since_ms {
        q.push(" AND l.at >= ").push_bind(since);
    }
    if let Some(until) = filter.until_ms {
        q.push(" AND l.at < ").push_bind(until);
    }
    if let Some(event_id) = filter.event_id.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        q.push(" AND l.event_id = ").push_bind(event_id.to_owned());
    }
}

/// A page's conditions, keyset position, order and size.
fn push_page_conditions(q: &mut QueryBuilder<'_, Sqlite>, filter: &LogFilter, in_time_order: bool, limit: i64) {
    push_conditions(q, filter, in_time_order);
    if let Some((at, id)) = filter.before {
        q.push(" AND (l.at, l.id) < (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY l.at DESC, l.id DESC LIMIT ").push_bind(limit);
}

pub(super) fn entry_of(r: &sqlx::sqlite::SqliteRow) -> Result<LogEntry, StoreError> {
    let network: String = r.try_get("network")?;
    let status: String = r.try_get("status")?;
    Ok(LogEntry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        config_id: r.try_get("config_id")?,
        network: Network::parse(&network).ok_or_else(|| StoreError::Corrupt(format!("log network '{network}'")))?,
        event_name: r.try_get("event_name")?,
        event_id: r.try_get("event_id")?,
        goal_key: r.try_get("goal_key")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("log status '{status}'")))?,
        http_status: r.try_get("http_status")?,
        latency_ms: r.try_get("latency_ms")?,
        attempt: r.try_get("attempt")?,
        request_id: r.try_get("request_id")?,
        error: r.try_get("error")?,
    })
}

impl SqliteStore {
    /// One page of the log, newest first (keyset paging, never OFFSET). Every shape of filter
    /// reads about one page of index entries, however large the log:
    /// - an event id: its index;
    /// - statuses of a game or config: one range of `(config, status, at, id)` per pair, each
    ///   newest first and cut at the page size, merged (rare and common statuses alike);
    /// - no status: the newest-first walk of the whole log's time index, filtered by config.
    pub async fn log_page(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        let limit = i64::from(filter.limit.clamp(1, 5000));
        let by_event = filter.event_id.as_deref().is_some_and(|e| !e.trim().is_empty());
        let scoped = filter.game_id.is_some() || filter.config_id.is_some();
        let rows = if !by_event && scoped && !filter.statuses.is_empty() {
            let configs: Vec<i64> = match (filter.config_id, filter.game_id) {
                (Some(config), _) => vec![config],
                (None, Some(game)) => {
                    sqlx::query_scalar("SELECT id FROM configs WHERE game_id = ?")
                        .bind(game)
                        .fetch_all(&self.pool)
                        .await?
                }
                (None, None) => Vec::new(),
            };
            if configs.is_empty() {
                return Ok(Vec::new());
            }
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("SELECT {} FROM (", LOG_COLUMNS.replace("l.", "")));
            let mut first = true;
            for config in &configs {
                for status in &filter.statuses {
                    if !first {
                        q.push(" UNION ALL ");
                    }
                    first = false;
                    let one = LogFilter { config_id: Some(*config), statuses: vec![*status], ..filter.clone() };
                    q.push(format!("SELECT * FROM (SELECT {LOG_COLUMNS} FROM delivery_log l WHERE 1 = 1"));
                    push_page_conditions(&mut q, &one, false, limit);
                    q.push(")");
                }
            }
            q.push(") ORDER BY at DESC, id DESC LIMIT ").push_bind(limit);
            q.build().fetch_all(&self.pool).await?
        } else {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("SELECT {LOG_COLUMNS} FROM delivery_log l WHERE 1 = 1"));
            push_page_conditions(&mut q, filter, !by_event, limit);
            q.build().fetch_all(&self.pool).await?
        };
        rows.iter().map(entry_of).collect()
    }

    /// How many rows a filter matches (an export's progress total).
    pub async fn log_count(&self, filter: &LogFilter) -> Result<u64, StoreError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT COUNT(*) FROM delivery_log l WHERE 1 = 1");
        push_conditions(&mut q, filter, false);
        Ok(q.build_query_scalar::<i64>().fetch_one(&self.pool).await? as u64)
    }

    /// One row by id.
    pub async fn log_entry(&self, id: i64) -> Result<Option<(LogEntry, Option<i64>, Option<i64>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS}, l.request_ref, l.item_index FROM delivery_log l WHERE l.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((entry_of(&r)?, r.try_get("request_ref")?, r.try_get("item_index")?))).transpose()
    }

    /// The conversions of one stored request and how each fared (their latest attempt in it).
    pub async fn log_batch(&self, request_ref: i64) -> Result<Vec<BatchItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, goal_key, status, error FROM delivery_log WHERE request_ref = ? ORDER BY item_index, id",
        )
        .bind(request_ref)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(BatchItem {
                    log_id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    goal_key: r.try_get("goal_key")?,
                    status: DeliveryStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("log status '{status}'")))?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    /// The chart and totals of a filter's time range and configs, from the hourly counts kept
    /// with every log insert: bars per hour, per day over 7 days. (Statuses and event ids do
    /// not narrow the chart: it shows the whole range.)
    pub async fn log_summary(&self, filter: &LogFilter, now_ms: i64) -> Result<LogSummary, StoreError> {
        let since = filter.since_ms.unwrap_or(now_ms - 30 * DAY_MS);
        let until = filter.until_ms.unwrap_or(now_ms + 1);
        let bucket_ms = if until - since > 7 * DAY_MS + HOUR_MS { DAY_MS } else { HOUR_MS };
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT h.hour, h.status, SUM(h.count) FROM log_hourly h WHERE h.hour >= ");
        q.push_bind(since - since.rem_euclid(HOUR_MS)).push(" AND h.hour < ").push_bind(until);
        if let Some(game) = filter.game_id {
            q.push(" AND h.config_id IN (SELECT id FROM configs WHERE game_id = ").push_bind(game).push(")");
        }
        if let Some(config) = filter.config_id {
            q.push(" AND h.config_id = ").push_bind(config);
        }
        q.push(" GROUP BY h.hour, h.status ORDER BY h.hour");
        let rows = q.build().fetch_all(&self.pool).await?;
        let first = since - since.rem_euclid(bucket_ms);
        let count = usize::try_from((until - first + bucket_ms - 1) / bucket_ms).unwrap_or(0).min(24 * 62);
        let mut buckets: Vec<ChartBucket> = (0..count)
            .map(|i| ChartBucket { start_ms: first + i as i64 * bucket_ms, ..ChartBucket::default() })
            .collect();
        let mut totals = LogTotals::default();
        for r in &rows {
            let hour: i64 = r.try_get(0)?;
            let status: String = r.try_get(1)?;
            let n: i64 = r.try_get(2)?;
            let Some(status) = DeliveryStatus::parse(&status) else { continue };
            let n = n.max(0) as u64;
            totals.add(status, n);
            let Some(bucket) = usize::try_from((hour - first) / bucket_ms).ok().and_then(|i| buckets.get_mut(i)) else {
                continue;
            };
            match status {
                DeliveryStatus::Success => bucket.success += n,
                DeliveryStatus::Failed | DeliveryStatus::GivenUp => bucket.failed += n,
                DeliveryStatus::Retried => bucket.retried += n,
                DeliveryStatus::Held | DeliveryStatus::Offline => bucket.waiting += n,
            }
        }
        Ok(LogSummary { bucket_ms, buckets, success_rate: totals.success_rate(), totals })
    }

    /// Re-queues, under their own event ids, the failed and given-up conversions a filter shows
    /// (those still kept as dead rows). Returns how many.
    pub async fn replay_filtered(&self, filter: &LogFilter, now_ms: i64) -> Result<u64, StoreError> {
        let mut narrowed = filter.clone();
        narrowed.statuses.retain(|s| matches!(s, DeliveryStatus::Failed | DeliveryStatus::GivenUp));
        if narrowed.statuses.is_empty() {
            narrowed.statuses = vec![DeliveryStatus::Failed, DeliveryStatus::GivenUp];
        }
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE queue SET state = 'ready', attempts = 0, failing_since = NULL, settled_at = NULL, run_at = ",
        );
        q.push_bind(now_ms).push(
            " WHERE state = 'dead' AND (config_id, event_id, goal_key) IN
                (SELECT l.config_id, l.event_id, l.goal_key FROM delivery_log l WHERE 1 = 1",
        );
        push_conditions(&mut q, &narrowed, false);
        q.push(")");
        Ok(q.build().execute(&self.pool).await?.rows_affected())
    }

    /// Re-queues the named log rows' conversions when they are dead (failed or given up).
    pub async fn replay_log_rows(&self, log_ids: &[i64], now_ms: i64) -> Result<u64, StoreError> {
        let ids = serde_json::to_string(log_ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(sqlx::query(
            "UPDATE queue SET state = 'ready', attempts = 0, failing_since = NULL, settled_at = NULL, run_at = ?1
             WHERE state = 'dead' AND (config_id, event_id, goal_key) IN
                (SELECT config_id, event_id, goal_key FROM delivery_log WHERE id IN (SELECT value FROM json_each(?2)))",
        )
        .bind(now_ms)
        .bind(ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Credential failures (a 401/403 with no success since), no recent activity (no attempt in
    /// 24 h), or normal.
    /// Index seeks on (config, status, at) only: instant on millions of rows.
    pub async fn health(&self, config_id: i64, now_ms: i64) -> Result<Health, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MAX(at) FROM delivery_log WHERE config_id = ?1 AND status = 'success'),
                    (SELECT MAX(at) FROM delivery_log WHERE config_id = ?1 AND status = 'held'),
                    (SELECT MAX(hour) FROM log_hourly WHERE config_id = ?1)",
        )
        .bind(config_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::store::decode::health(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, now_ms))
    }

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
            "SELECT (at / 1000) * 1000 AS second, COUNT(*) FROM delivery_log INDEXED BY log_recent
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
        sqlx::query("DELETE FROM log_hourly WHERE config_id = ?").bind(config_id).execute(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO log_hourly (hour, config_id, status, count)
             SELECT (at / 3600000) * 3600000, config_id, status, COUNT(*) FROM delivery_log WHERE config_id = ? GROUP BY 1, 2, 3",
        )
        .bind(config_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
