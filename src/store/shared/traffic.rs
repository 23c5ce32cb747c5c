//! Per-hour traffic of each game: events that arrived per source, conversions queued per config,
//! and deliveries not queued per config and reason — counts only, never who. The statements
//! are the same on both engines; recording outside an enqueue stays with each engine (SQLite's
//! writes take their turn at its write gate).

/// Expands to `add_traffic` (a free function on a connection) and the store's `traffic` and
/// `traffic_family` for an engine: `store` its type, `connection` and `database` its sqlx types,
/// `byte_order` what makes a text comparison compare bytes (PostgreSQL: ` COLLATE "C"`; in a
/// language's collation ':' and ';' may not sort as bytes do).
macro_rules! traffic {
    (store = $store:ty, connection = $connection:ty, database = $database:ty, byte_order = $byte_order:literal) => {
        use sqlx::{QueryBuilder, Row};

        use $crate::store::rows::TrafficCount;
        use $crate::store::StoreError;

        /// Adds counters to the hour of `now_ms` on `conn` (a transaction's, or the pool's).
        pub(super) async fn add_traffic(
            conn: &mut $connection,
            now_ms: i64,
            counts: &[TrafficCount],
        ) -> Result<(), StoreError> {
            // One row per key: an INSERT may not update the same row twice (PostgreSQL).
            let mut merged: std::collections::BTreeMap<(i64, &str, i64, &str), u64> = Default::default();
            for c in counts.iter().filter(|c| c.count > 0) {
                *merged.entry((c.game_id, c.source.as_str(), c.config_id, c.kind.as_str())).or_default() += c.count;
            }
            if merged.is_empty() {
                return Ok(());
            }
            let counts: Vec<TrafficCount> = merged
                .into_iter()
                .map(|((game_id, source, config_id, kind), count)| TrafficCount {
                    game_id,
                    source: source.to_owned(),
                    config_id,
                    kind: kind.to_owned(),
                    count,
                })
                .collect();
            let hour = now_ms - now_ms.rem_euclid(3_600_000);
            let mut q: QueryBuilder<$database> =
                QueryBuilder::new("INSERT INTO traffic (hour, game_id, source, config_id, kind, count) ");
            q.push_values(&counts, |mut b, c| {
                b.push_bind(hour)
                    .push_bind(c.game_id)
                    .push_bind(&c.source)
                    .push_bind(c.config_id)
                    .push_bind(&c.kind)
                    .push_bind(c.count as i64);
            });
            q.push(
                " ON CONFLICT (hour, game_id, source, config_id, kind) DO UPDATE SET count = traffic.count + excluded.count",
            );
            q.build().execute(&mut *conn).await?;
            Ok(())
        }

        impl $store {
            /// One family of a game's counters (kinds starting with `prefix`, e.g. `fresh:`)
            /// summed over `[since, until)` per config and kind: `(config id, kind, count)`.
            /// The kind range is read from the index `traffic_by_kind` alone.
            pub async fn traffic_family(
                &self,
                game_id: i64,
                prefix: &str,
                since_ms: i64,
                until_ms: i64,
            ) -> Result<Vec<(i64, String, u64)>, StoreError> {
                // Grouped in the index's order (byte order too): the sums stream without a sort.
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(concat!(
                    "SELECT config_id, kind",
                    $byte_order,
                    ", CAST(SUM(count) AS BIGINT) FROM traffic WHERE game_id = $1 AND kind",
                    $byte_order,
                    " >= $2 AND kind",
                    $byte_order,
                    " < $3 AND hour >= $4 AND hour < $5 GROUP BY kind",
                    $byte_order,
                    ", config_id"
                ))
                .bind(game_id)
                .bind(prefix)
                .bind($crate::store::shared::traffic::prefix_end(prefix))
                .bind(since_ms - since_ms.rem_euclid(3_600_000))
                .bind(until_ms)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(config, kind, count)| (config, kind, count.max(0) as u64)).collect())
            }

            /// A game's counters summed over `[since, until)`.
            pub async fn traffic(
                &self,
                game_id: i64,
                since_ms: i64,
                until_ms: i64,
            ) -> Result<Vec<TrafficCount>, StoreError> {
                let rows = sqlx::query(
                    "SELECT source, config_id, kind, CAST(SUM(count) AS BIGINT) FROM traffic
                     WHERE game_id = $1 AND hour >= $2 AND hour < $3
                     GROUP BY source, config_id, kind ORDER BY source, config_id, kind",
                )
                .bind(game_id)
                .bind(since_ms - since_ms.rem_euclid(3_600_000))
                .bind(until_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(TrafficCount {
                            game_id,
                            source: r.try_get(0)?,
                            config_id: r.try_get(1)?,
                            kind: r.try_get(2)?,
                            count: r.try_get::<i64, _>(3)?.max(0) as u64,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use traffic;

/// The first string after every string that starts with `prefix` (ASCII): its last byte + 1.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    match end.pop() {
        Some(last) if last.is_ascii() && last != '\x7f' => end.push((last as u8 + 1) as char),
        Some(last) => {
            end.push(last);
            end.push(char::MAX);
        }
        None => end.push(char::MAX),
    }
    end
}
