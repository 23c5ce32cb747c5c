//! Traffic counts on SQLite: the statements both engines share (store/shared/traffic.rs), and
//! recording outside an enqueue at its turn of the write gate.

crate::store::shared::traffic::traffic!(
    store = super::SqliteStore,
    connection = sqlx::SqliteConnection,
    database = sqlx::Sqlite,
    byte_order = ""
);

impl super::SqliteStore {
    /// Adds counters to the hour of `now_ms`.
    pub async fn record_traffic(&self, now_ms: i64, counts: &[TrafficCount]) -> Result<(), StoreError> {
        let _turn = self.enqueue_turn().await;
        let mut conn = self.pool.acquire().await?;
        add_traffic(&mut conn, now_ms, counts).await
    }
}
