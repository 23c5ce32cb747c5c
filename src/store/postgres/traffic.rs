//! Traffic counts on PostgreSQL: the statements both engines share (store/shared/traffic.rs).

crate::store::shared::traffic::traffic!(
    store = super::PgStore,
    connection = sqlx::PgConnection,
    database = sqlx::Postgres
);

impl super::PgStore {
    /// One family of a game's counters (kinds starting with `prefix`, e.g. `fresh:`) summed over
    /// `[since, until)` per config and kind: `(config id, kind, count)`.
    pub async fn traffic_family(
        &self,
        game_id: i64,
        prefix: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        // Byte order ("C"): in a language's collation ':' and ';' may not sort as bytes do.
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            r#"SELECT config_id, kind, CAST(SUM(count) AS BIGINT) FROM traffic
               WHERE game_id = $1 AND kind COLLATE "C" >= $2 AND kind COLLATE "C" < $3
                 AND hour >= $4 AND hour < $5
               GROUP BY config_id, kind"#,
        )
        .bind(game_id)
        .bind(prefix)
        .bind(crate::store::shared::traffic::prefix_end(prefix))
        .bind(since_ms - since_ms.rem_euclid(3_600_000))
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(config, kind, count)| (config, kind, count.max(0) as u64)).collect())
    }

    /// Adds counters to the hour of `now_ms`.
    pub async fn record_traffic(&self, now_ms: i64, counts: &[TrafficCount]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        add_traffic(&mut conn, now_ms, counts).await
    }
}
