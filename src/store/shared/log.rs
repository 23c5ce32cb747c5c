//! The delivery log's queries, the same on both engines: filtered keyset pages, counts, a row
//! and its batch, the hourly chart and totals, replay of what a filter or a selection shows,
//! replay of a config's dead rows or named events, and health. Retention and the X limiter's
//! seed stay with each engine (SQLite deletes in chunks at its checkpoints' pace and names its
//! index).

/// Expands to the log queries for an engine: `store` its type, `database` and `row` its sqlx
/// types, `begin` how a transaction that reads then writes begins (see games.rs), and
/// `planner_knows_configs`: whether its planner weighs a page's config terms by the column's
/// statistics (PostgreSQL), so that a page names the game's configs and leaves the choice of
/// index to it; SQLite's does not, and its pages hide the config terms from it instead.
macro_rules! log {
    (
        store = $store:ty,
        database = $database:ty,
        row = $row:ty,
        begin = $begin:literal,
        planner_knows_configs = $planner_knows_configs:literal
    ) => {
        use sqlx::{QueryBuilder, Row};

        use $crate::model::{
            BatchItem, DeliveryStatus, Health, LogEntry, LogFilter, LogSummary, Network,
        };
        use $crate::store::StoreError;

        const DAY_MS: i64 = 24 * 3600 * 1000;
        const HOUR_MS: i64 = 3600 * 1000;
        const LOG_COLUMNS: &str = "l.id, l.at, l.config_id, l.network, l.event_name, l.event_id, l.goal_key, l.status,
             l.http_status, l.latency_ms, l.attempt, l.request_id, l.error";
        /// Rows or events named at once in one statement (well under either engine's
        /// bound-parameter cap).
        const IDS_PER_STATEMENT: usize = 1000;

        /// Appends a filter's conditions (on `delivery_log l`) to a query. `in_time_order`: the
        /// config terms are written so that no index is used for them (`+`), which leaves the
        /// planner the newest-first walk of `log_recent` that a LIMIT can stop early.
        /// `game_configs`: the game's configs, named instead of looked up by the query.
        fn push_conditions(
            q: &mut QueryBuilder<'_, $database>,
            filter: &LogFilter,
            in_time_order: bool,
            game_configs: Option<&[i64]>,
        ) {
            let column = if in_time_order { " AND +l.config_id" } else { " AND l.config_id" };
            match (filter.game_id, game_configs) {
                (Some(_), Some(configs)) => {
                    q.push(column).push(" IN (");
                    let mut list = q.separated(", ");
                    for config in configs {
                        list.push_bind(*config);
                    }
                    q.push(")");
                }
                (Some(game), None) => {
                    q.push(column).push(" IN (SELECT id FROM configs WHERE game_id = ").push_bind(game).push(")");
                }
                (None, _) => {}
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
        fn push_page_conditions(
            q: &mut QueryBuilder<'_, $database>,
            filter: &LogFilter,
            in_time_order: bool,
            game_configs: Option<&[i64]>,
            limit: i64,
        ) {
            push_conditions(q, filter, in_time_order, game_configs);
            if let Some((at, id)) = filter.before {
                q.push(" AND (l.at, l.id) < (").push_bind(at).push(", ").push_bind(id).push(")");
            }
            q.push(" ORDER BY l.at DESC, l.id DESC LIMIT ").push_bind(limit);
        }

        fn status_of(status: &str) -> Result<DeliveryStatus, StoreError> {
            DeliveryStatus::parse(status).ok_or_else(|| StoreError::Corrupt(format!("log status '{status}'")))
        }

        fn entry_of(r: &$row) -> Result<LogEntry, StoreError> {
            let network: String = r.try_get("network")?;
            let status: String = r.try_get("status")?;
            Ok(LogEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                config_id: r.try_get("config_id")?,
                network: Network::parse(&network)
                    .ok_or_else(|| StoreError::Corrupt(format!("log network '{network}'")))?,
                event_name: r.try_get("event_name")?,
                event_id: r.try_get("event_id")?,
                goal_key: r.try_get("goal_key")?,
                status: status_of(&status)?,
                http_status: r.try_get("http_status")?,
                latency_ms: r.try_get("latency_ms")?,
                attempt: r.try_get("attempt")?,
                request_id: r.try_get("request_id")?,
                error: r.try_get("error")?,
            })
        }

        /// The configs a page reads one range of `(config, status, at, id)` each for.
        async fn page_configs(store: &$store, filter: &LogFilter) -> Result<Vec<i64>, StoreError> {
            Ok(match (filter.config_id, filter.game_id) {
                (Some(config), _) => vec![config],
                (None, Some(game)) => {
                    sqlx::query_scalar("SELECT id FROM configs WHERE game_id = $1 ORDER BY id")
                        .bind(game)
                        .fetch_all(&store.pool)
                        .await?
                }
                (None, None) => Vec::new(),
            })
        }

        /// Statuses of a game or config: one newest-first range per (config, status), each cut
        /// at the page size, merged.
        fn merged_ranges(filter: &LogFilter, configs: &[i64], limit: i64) -> QueryBuilder<'static, $database> {
            let mut q: QueryBuilder<$database> =
                QueryBuilder::new(format!("SELECT {} FROM (", LOG_COLUMNS.replace("l.", "")));
            let mut first = true;
            for config in configs {
                for status in &filter.statuses {
                    if !first {
                        q.push(" UNION ALL ");
                    }
                    first = false;
                    let one = LogFilter { config_id: Some(*config), game_id: None, statuses: vec![*status], ..filter.clone() };
                    q.push(format!("SELECT * FROM (SELECT {LOG_COLUMNS} FROM delivery_log l WHERE 1 = 1"));
                    push_page_conditions(&mut q, &one, false, None, limit);
                    q.push(") AS one_range");
                }
            }
            q.push(") AS ranges ORDER BY at DESC, id DESC LIMIT ").push_bind(limit);
            q
        }

        impl $store {
            /// One page of the log, newest first (keyset paging, never OFFSET). Every shape of
            /// filter reads about one page of index entries, however large the log:
            /// - an event id: its index;
            /// - statuses of a game or config: one range of `(config, status, at, id)` per
            ///   pair, each newest first and cut at the page size, merged (rare and common
            ///   statuses alike);
            /// - no status: on SQLite the newest-first walk of the whole log's time index,
            ///   filtered by config; on PostgreSQL, whose planner knows how the log's rows fall
            ///   by config, the game's configs named and the index its planner picks (that walk,
            ///   or a rare config's own range).
            ///
            /// Planned for each call's values (not prepared once): PostgreSQL's generic plan of
            /// a prepared page, blind to the time range and game, took 36 ms at the median on
            /// 5 M rows where the plan for the values takes 0.4 ms.
            pub async fn log_page(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
                let limit = i64::from(filter.limit.clamp(1, 5000));
                let by_event = filter.event_id.as_deref().is_some_and(|e| !e.trim().is_empty());
                let scoped = filter.game_id.is_some() || filter.config_id.is_some();
                let rows = if !by_event && scoped && !filter.statuses.is_empty() {
                    let configs = page_configs(self, filter).await?;
                    if configs.is_empty() {
                        return Ok(Vec::new());
                    }
                    merged_ranges(filter, &configs, limit).build().persistent(false).fetch_all(&self.pool).await?
                } else {
                    let named = $planner_knows_configs && filter.game_id.is_some();
                    let game_configs = if named { Some(page_configs(self, filter).await?) } else { None };
                    if game_configs.as_ref().is_some_and(Vec::is_empty) {
                        return Ok(Vec::new());
                    }
                    let mut q: QueryBuilder<$database> =
                        QueryBuilder::new(format!("SELECT {LOG_COLUMNS} FROM delivery_log l WHERE 1 = 1"));
                    let in_time_order = !by_event && !$planner_knows_configs;
                    push_page_conditions(&mut q, filter, in_time_order, game_configs.as_deref(), limit);
                    q.build().persistent(false).fetch_all(&self.pool).await?
                };
                rows.iter().map(entry_of).collect()
            }

            /// How many rows a filter matches (an export's progress total).
            pub async fn log_count(&self, filter: &LogFilter) -> Result<u64, StoreError> {
                let mut q: QueryBuilder<$database> =
                    QueryBuilder::new("SELECT COUNT(*) FROM delivery_log l WHERE 1 = 1");
                push_conditions(&mut q, filter, false, None);
                Ok(q.build_query_scalar::<i64>().fetch_one(&self.pool).await?.max(0) as u64)
            }

            /// A config's rows with ids from `first` to `last`, oldest first: one settle's, for
            /// a live view. (PostgreSQL's live log reads with it; SQLite's hands its own rows
            /// over.)
            #[allow(dead_code)]
            pub async fn log_rows_between(
                pool: &sqlx::Pool<$database>,
                config_id: i64,
                first: i64,
                last: i64,
            ) -> Result<Vec<LogEntry>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {LOG_COLUMNS} FROM delivery_log l WHERE l.id BETWEEN $1 AND $2 AND l.config_id = $3
                     ORDER BY l.id"
                ))
                .bind(first)
                .bind(last)
                .bind(config_id)
                .fetch_all(pool)
                .await?;
                rows.iter().map(entry_of).collect()
            }

            /// One row by id, with the stored request it was sent in and its place there.
            pub async fn log_entry(
                &self,
                id: i64,
            ) -> Result<Option<(LogEntry, Option<i64>, Option<i64>)>, StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {LOG_COLUMNS}, l.request_ref, l.item_index FROM delivery_log l WHERE l.id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| Ok((entry_of(&r)?, r.try_get("request_ref")?, r.try_get("item_index")?))).transpose()
            }

            /// The conversions of one stored request and how each fared (their latest attempt in it).
            pub async fn log_batch(&self, request_ref: i64) -> Result<Vec<BatchItem>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, event_id, goal_key, status, error FROM delivery_log
                     WHERE request_ref = $1 ORDER BY item_index, id",
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
                            status: status_of(&status)?,
                            error: r.try_get("error")?,
                        })
                    })
                    .collect()
            }

            /// The chart and totals of a filter's time range and configs, from the hourly counts
            /// kept with every log insert: bars per hour, per day over 7 days. (Statuses and
            /// event ids do not narrow the chart: it shows the whole range.)
            pub async fn log_summary(&self, filter: &LogFilter, now_ms: i64) -> Result<LogSummary, StoreError> {
                let since = filter.since_ms.unwrap_or(now_ms - 30 * DAY_MS);
                let until = filter.until_ms.unwrap_or(now_ms + 1);
                let mut q: QueryBuilder<$database> = QueryBuilder::new(
                    "SELECT h.hour, h.status, CAST(SUM(h.count) AS BIGINT) FROM log_hourly h WHERE h.hour >= ",
                );
                q.push_bind(since - since.rem_euclid(HOUR_MS)).push(" AND h.hour < ").push_bind(until);
                if let Some(game) = filter.game_id {
                    q.push(" AND h.config_id IN (SELECT id FROM configs WHERE game_id = ").push_bind(game).push(")");
                }
                if let Some(config) = filter.config_id {
                    q.push(" AND h.config_id = ").push_bind(config);
                }
                q.push(" GROUP BY h.hour, h.status ORDER BY h.hour");
                let rows = q.build().fetch_all(&self.pool).await?;
                let mut counts = Vec::with_capacity(rows.len());
                for r in &rows {
                    let status: String = r.try_get(1)?;
                    let Some(status) = DeliveryStatus::parse(&status) else { continue };
                    counts.push((r.try_get::<i64, _>(0)?, status, r.try_get::<i64, _>(2)?.max(0) as u64));
                }
                Ok($crate::store::decode::summary_of(since, until, &counts))
            }

            /// Re-queues, under their own event ids, the failed and given-up conversions a filter
            /// shows (those still kept as dead rows). Returns how many.
            pub async fn replay_filtered(&self, filter: &LogFilter, now_ms: i64) -> Result<u64, StoreError> {
                let mut narrowed = filter.clone();
                narrowed.statuses.retain(|s| matches!(s, DeliveryStatus::Failed | DeliveryStatus::GivenUp));
                if narrowed.statuses.is_empty() {
                    narrowed.statuses = vec![DeliveryStatus::Failed, DeliveryStatus::GivenUp];
                }
                let mut q: QueryBuilder<$database> = QueryBuilder::new(
                    "UPDATE queue SET state = 'ready', attempts = 0, failing_since = NULL, settled_at = NULL, run_at = ",
                );
                q.push_bind(now_ms).push(
                    " WHERE state = 'dead' AND (config_id, event_id, goal_key) IN
                        (SELECT l.config_id, l.event_id, l.goal_key FROM delivery_log l WHERE 1 = 1",
                );
                push_conditions(&mut q, &narrowed, false, None);
                q.push(")");
                Ok(q.build().execute(&self.pool).await?.rows_affected())
            }

            /// Puts a config's dead (failed or given-up) rows back into the queue under their own
            /// event ids. Named events that were delivered, are still pending or are unknown are
            /// refused with the reason, and nothing is re-queued then. Returns how many rows were
            /// re-queued.
            pub async fn replay(
                &self,
                replay: &$crate::store::rows::Replay,
                now_ms: i64,
            ) -> Result<Result<u64, $crate::store::rows::ReplayRefusal>, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                for event_id in &replay.event_ids {
                    let states: Vec<String> =
                        sqlx::query_scalar("SELECT state FROM queue WHERE config_id = $1 AND event_id = $2")
                            .bind(replay.config_id)
                            .bind(event_id)
                            .fetch_all(&mut *tx)
                            .await?;
                    let delivered_earlier: Option<String> = sqlx::query_scalar(
                        "SELECT event_id FROM delivery_log
                         WHERE config_id = $1 AND event_id = $2 AND status = 'success' LIMIT 1",
                    )
                    .bind(replay.config_id)
                    .bind(event_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(refusal) =
                        $crate::store::rows::replay_refusal(event_id, &states, delivered_earlier.is_some())
                    {
                        return Ok(Err(refusal));
                    }
                }
                let mut replayed = 0;
                // All dead rows since a time, or the named events' in parts of bounded size.
                let parts: Vec<&[String]> = if replay.event_ids.is_empty() {
                    vec![&[]]
                } else {
                    replay.event_ids.chunks(IDS_PER_STATEMENT).collect()
                };
                for event_ids in parts {
                    let mut q: QueryBuilder<$database> = QueryBuilder::new(
                        "UPDATE queue SET state = 'ready', attempts = 0, failing_since = NULL, settled_at = NULL, run_at = ",
                    );
                    q.push_bind(now_ms).push(" WHERE state = 'dead' AND config_id = ").push_bind(replay.config_id);
                    if let Some(since) = replay.since_ms {
                        q.push(" AND settled_at >= ").push_bind(since);
                    }
                    if !event_ids.is_empty() {
                        q.push(" AND event_id IN (");
                        let mut list = q.separated(", ");
                        for id in event_ids {
                            list.push_bind(id.clone());
                        }
                        q.push(")");
                    }
                    replayed += q.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(Ok(replayed))
            }

            /// Re-queues the named log rows' conversions when they are dead (failed or given up).
            pub async fn replay_log_rows(&self, log_ids: &[i64], now_ms: i64) -> Result<u64, StoreError> {
                let mut replayed = 0;
                for ids in log_ids.chunks(IDS_PER_STATEMENT) {
                    let mut q: QueryBuilder<$database> = QueryBuilder::new(
                        "UPDATE queue SET state = 'ready', attempts = 0, failing_since = NULL, settled_at = NULL, run_at = ",
                    );
                    q.push_bind(now_ms).push(
                        " WHERE state = 'dead' AND (config_id, event_id, goal_key) IN
                            (SELECT config_id, event_id, goal_key FROM delivery_log WHERE id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(*id);
                    }
                    q.push("))");
                    replayed += q.build().execute(&self.pool).await?.rows_affected();
                }
                Ok(replayed)
            }

            /// Counts a config's hourly totals afresh from its log rows (after a bulk write that
            /// did not keep them: the synthetic log of benchmarks and demos).
            pub(crate) async fn rebuild_hourly_counts(&self, config_id: i64) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM log_hourly WHERE config_id = $1").bind(config_id).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO log_hourly (hour, config_id, status, count)
                     SELECT (at / 3600000) * 3600000, config_id, status, COUNT(*) FROM delivery_log
                     WHERE config_id = $1 GROUP BY 1, 2, 3",
                )
                .bind(config_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            /// Credential failures (a 401/403 with no success since), no recent activity (no
            /// attempt in 24 h), or normal. Index seeks on (config, status, at) only: instant on
            /// millions of rows.
            pub async fn health(&self, config_id: i64, now_ms: i64) -> Result<Health, StoreError> {
                let row = sqlx::query(
                    "SELECT (SELECT MAX(at) FROM delivery_log WHERE config_id = $1 AND status = 'success'),
                            (SELECT MAX(at) FROM delivery_log WHERE config_id = $1 AND status = 'held'),
                            (SELECT MAX(hour) FROM log_hourly WHERE config_id = $1)",
                )
                .bind(config_id)
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::store::decode::health(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, now_ms))
            }
        }
    };
}
pub(crate) use log;
