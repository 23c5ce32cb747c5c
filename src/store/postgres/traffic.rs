//! Traffic counts on PostgreSQL: the statements both engines share (store/shared/traffic.rs).

crate::store::shared::traffic::traffic!(
    store = super::PgStore,
    connection = sqlx::PgConnection,
    database = sqlx::Postgres,
    byte_order = r#" COLLATE "C""#
);

impl super::PgStore {
    /// Adds counters to the hour of `now_ms`.
    pub async fn record_traffic(&self, now_ms: i64, counts: &[TrafficCount]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        add_traffic(&mut conn, now_ms, counts).await
    }
}
