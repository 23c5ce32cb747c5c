//! The log on PostgreSQL beyond the shared queries (store/shared/log.rs): the database's size
//! and the synthetic log that benchmarks and demos fill.

use super::{PgStore, StoreError};

impl PgStore {
    /// Bytes the database takes on disk (tables, indexes and what they have yet to reuse).
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
        let bytes: i64 =
            sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&self.pool).await?;
        Ok(bytes.max(0) as u64)
    }

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
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS synthetic_players (n BIGINT PRIMARY KEY, key TEXT NOT NULL)")
            .execute(&mut *conn)
            .await?;
        let (numbers, keys): (Vec<i64>, Vec<String>) =
            (0..PLAYERS).map(|n| (n, self.player_key(&format!("player-{n}")))).unzip();
        sqlx::query(
            "INSERT INTO synthetic_players (n, key) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&numbers)
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
        let step = (span_ms / rows.max(1) as i64).max(1);
        let mut start = 0;
        while start < rows {
            let end = (start + PER_STATEMENT).min(rows);
            sqlx::query(
                "INSERT INTO delivery_log (at, config_id, network, event_name, event_id, player_key, status, http_status,
                                           latency_ms, attempt, request_id, credential_failure, error)
                 SELECT $3 - s.n * $4, $5, 'tiktok', 'purchase', 'evt-' || s.n, p.key,
                        CASE s.n % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'retried' ELSE 'success' END,
                        CASE s.n % 10 WHEN 0 THEN 400 WHEN 1 THEN 503 ELSE 200 END, 40 + s.n % 50, 1, NULL, FALSE,
                        CASE s.n % 10 WHEN 0 THEN 'HTTP 400: invalid' WHEN 1 THEN 'HTTP 503' END
                 FROM generate_series($1::BIGINT, $2::BIGINT - 1) AS s(n)
                 JOIN synthetic_players p ON p.n = s.n % $6
                 ",
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
        // Fresh statistics: the planner picks the log's index walks on what it knows.
        sqlx::query("ANALYZE delivery_log").execute(&mut *conn).await?;
        Ok(())
    }
}
