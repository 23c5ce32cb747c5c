//! The statements of settling that are the same on both engines: a batch's requests and the
//! items no log row points at stored, its config's own state (paused on a refused credential,
//! off- or online), and an erased player's items found and replaced in the stored requests. How the rows
//! and the log are written differs (SQLite in parts at its write gate, PostgreSQL in one
//! transaction with array parameters) and stays with each engine.

/// Expands to the shared statements on an engine's `connection` and `database` types;
/// `lock_row` is what a read of a row about to be rewritten adds (PostgreSQL: ` FOR UPDATE`;
/// SQLite's IMMEDIATE transaction holds the whole database already).
macro_rules! settle {
    (connection = $connection:ty, database = $database:ty, lock_row = $lock_row:literal) => {
        use std::collections::BTreeMap;

        use $crate::model::Network;
        use $crate::store::rows::{Offline, Settlement};
        use $crate::store::settlement::{redacted_body, RequestRow};
        use $crate::store::StoreError;

        /// Files the items that no log row points at under their players: `(request index,
        /// item, player key)`, the request index into `request_ids`.
        pub(crate) async fn insert_request_items(
            tx: &mut $connection,
            items: &[(usize, i64, &str)],
            requests: &[RequestRow],
            request_ids: &[i64],
        ) -> Result<(), StoreError> {
            for chunk in items.chunks(256) {
                let mut insert: sqlx::QueryBuilder<$database> =
                    sqlx::QueryBuilder::new("INSERT INTO request_items (player_key, request_id, item_index, network) ");
                insert.push_values(chunk, |mut b, (request, item, key)| {
                    b.push_bind(*key)
                        .push_bind(request_ids.get(*request).copied())
                        .push_bind(item)
                        .push_bind(requests.get(*request).map(|r| r.network.as_str()));
                });
                insert.push(" ON CONFLICT DO NOTHING");
                insert.build().execute(&mut *tx).await?;
            }
            Ok(())
        }

        /// A player's items in the stored requests, by request: those their log rows point at
        /// and those filed in `request_items`.
        pub(crate) async fn player_items(
            tx: &mut $connection,
            player_key: &str,
        ) -> Result<BTreeMap<i64, (Network, Vec<i64>)>, StoreError> {
            let rows: Vec<(i64, i64, String)> = sqlx::query_as(
                "SELECT request_ref, item_index, network FROM delivery_log
                 WHERE player_key = $1 AND request_ref IS NOT NULL AND item_index IS NOT NULL
                 UNION ALL
                 SELECT request_id, item_index, network FROM request_items WHERE player_key = $1",
            )
            .bind(player_key)
            .fetch_all(&mut *tx)
            .await?;
            let mut by_request: BTreeMap<i64, (Network, Vec<i64>)> = BTreeMap::new();
            for (request, item, network) in rows {
                let Some(network) = Network::parse(&network) else { continue };
                by_request.entry(request).or_insert((network, Vec::new())).1.push(item);
            }
            Ok(by_request)
        }

        /// Replaces items of stored requests, inside the caller's transaction: `(request id,
        /// network, item indices)`. Returns how many items were replaced.
        pub(crate) async fn redact_stored_items(
            tx: &mut $connection,
            items: BTreeMap<i64, (Network, Vec<i64>)>,
        ) -> Result<u64, StoreError> {
            let mut redacted = 0;
            for (request_id, (network, indices)) in items {
                let stored: Option<Vec<u8>> =
                    sqlx::query_scalar(concat!("SELECT body FROM delivery_requests WHERE id = $1", $lock_row))
                        .bind(request_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(body) = stored.and_then(|s| redacted_body(network, &s, &indices).transpose()) else {
                    continue;
                };
                sqlx::query("UPDATE delivery_requests SET body = $1 WHERE id = $2")
                    .bind(body?)
                    .bind(request_id)
                    .execute(&mut *tx)
                    .await?;
                redacted += indices.len() as u64;
            }
            Ok(redacted)
        }

        /// Inserts the requests of a settlement; returns their ids in order.
        pub(crate) async fn insert_requests(
            tx: &mut $connection,
            requests: &[RequestRow],
        ) -> Result<Vec<i64>, StoreError> {
            let mut ids = Vec::with_capacity(requests.len());
            for r in requests {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO delivery_requests (at, config_id, url, headers, body, response_status, response_headers,
                         response_body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(r.at)
                .bind(r.config_id)
                .bind(&r.url)
                .bind(&r.headers)
                .bind(&r.body)
                .bind(r.response_status)
                .bind(&r.answer_headers)
                .bind(&r.answer)
                .fetch_one(&mut *tx)
                .await?;
                ids.push(id);
            }
            Ok(ids)
        }

        /// The config's own state after the batch: paused on a refused credential (unless it
        /// was rotated meanwhile), off- or online.
        pub(crate) async fn apply_config_state(tx: &mut $connection, s: &Settlement) -> Result<(), StoreError> {
            if let Some(pause) = &s.pause {
                sqlx::query(
                    "UPDATE configs SET paused_reason = $1 WHERE id = $2 AND credential_ref IS NOT DISTINCT FROM $3",
                )
                .bind(&pause.reason)
                .bind(pause.config_id)
                .bind(&pause.credential_ref)
                .execute(&mut *tx)
                .await?;
            }
            match &s.offline {
                Some(Offline::Down { config_id, since, until, probes, reason }) => {
                    sqlx::query(
                        "UPDATE configs SET offline_since = COALESCE(offline_since, $1), offline_until = $2,
                             offline_probes = $3, offline_reason = $4 WHERE id = $5",
                    )
                    .bind(since)
                    .bind(until)
                    .bind(probes)
                    .bind(reason)
                    .bind(config_id)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Offline::Up { config_id }) => {
                    sqlx::query(
                        "UPDATE configs SET offline_since = NULL, offline_until = NULL, offline_probes = 0,
                             offline_reason = NULL WHERE id = $1 AND offline_since IS NOT NULL",
                    )
                    .bind(config_id)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {}
            }
            Ok(())
        }
    };
}
pub(crate) use settle;
