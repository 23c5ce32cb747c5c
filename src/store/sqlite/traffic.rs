//! Traffic counts on SQLite: the statements both engines share (store/shared/traffic.rs), and
//! recording outside an enqueue at its turn of the write gate.

crate::store::shared::traffic::traffic!(
    store = super::SqliteStore,
    connection = sqlx::SqliteConnection,
    database = sqlx::Sqlite
);

impl super::SqliteStore {
    /// One family of a game's counters (kinds starting with `prefix`, e.g. `fresh:`) summed over
    /// `[since, until)` per config and kind: `(config id, kind, count)`.
    pub async fn traffic_family(
        &self,
        game_id: i64,
        prefix: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        // kind in [prefix, prefix with its last byte + 1): a range over the index, byte order.
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT config_id, kind, SUM(count) FROM traffic
             WHERE game_id = ?1 AND kind >= ?2 AND kind < ?3 AND hour >= ?4 AND hour < ?5
             GROUP BY config_id, kind",
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
        let _turn = self.enqueue_turn().await;
        let mut conn = self.pool.acquire().await?;
        add_traffic(&mut conn, now_ms, counts).await
    }
}
